/**
 * The full stack: the platform's node roles (gateway, auth, profile, chat) as brokers that meet only
 * over NATS, with Redis (cache, rate limits, presence) and a MongoDB-wire store, each started by the
 * test support's startNode from the same env a production node reads. All of them run in this
 * process by default; with the runner's --split each runs in a child of its own. Without a
 * transporter it is the embedded default instead: one broker with every role and the embedded store.
 */
import { type PlatformNode, type ServiceName, startNode, waitReady } from "../../test/support/platform.ts";
import { announce, childArgs, stopOnRequest } from "../child.ts";
import { startProbe } from "./probe.ts";

const args = childArgs<{
  /** Empty: the embedded default (`npm start`), every role in one broker with the embedded store. */
  transporter: string;
  mongoUrl: string;
  redisUrl: string;
  namespace: string;
  dataDir: string;
  /** The nodes this process hosts, one broker each. */
  roles: ServiceName[];
  /** Settings given with the runner's --env, over these defaults. */
  env: Record<string, string>;
  /** Where to write the event-loop and GC probe's lines (probe.ts); none: no probe. */
  probeFile?: string;
}>();

if (args.probeFile) startProbe(args.probeFile);

const env = {
  TRANSPORTER: args.transporter,
  MONGO_URL: args.mongoUrl,
  REDIS_URL: args.redisUrl,
  NAMESPACE: args.namespace,
  DATA_DIR: args.dataDir,
  HOST: "127.0.0.1",
  PORT: "0",
  METRICS_ENABLED: "false",
  LOG_LEVEL: "warn",
  ACCESS_TOKEN_TTL_S: "86400",
  RATE_LIMIT_REGISTER_IP: "10000000/60",
  RATE_LIMIT_LOGIN_IP: "10000000/60",
  RATE_LIMIT_LOGIN_ACCOUNT: "10000000/60",
  ...args.env,
};

const services: PlatformNode[] = [];
let gateway: PlatformNode | undefined;

stopOnRequest(async () => {
  await gateway?.stop();
  await Promise.all(services.map((node) => node.stop()));
});

const start = async (role: ServiceName) => {
  const node = await startNode([role], { ...env, NODE_ID: `bench-${role}-${process.pid}` });
  if (role === "gateway") gateway = node;
  else services.push(node);
};
if (!args.transporter) {
  const { TRANSPORTER: _t, MONGO_URL: _m, REDIS_URL: _r, ...embedded } = env;
  gateway = await startNode([...new Set(args.roles)], {
    ...embedded,
    NODE_ID: `bench-embedded-${process.pid}`,
  });
} else {
  await Promise.all(args.roles.filter((role) => role !== "gateway").map(start));
  if (args.roles.includes("gateway")) await start("gateway");
}
if (gateway) await waitReady(gateway.url, 60_000);
announce("ready", { url: gateway?.url ?? "" });
