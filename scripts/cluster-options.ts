/**
 * The options of `npm run cluster`, from flags first and env vars second. A cluster is a list of
 * runner processes; each hosts a set of services and forks `instances` workers (moleculer-runner
 * `--instances`), so one process may host any mix of services and gateways of one process share
 * one port through Node's cluster module.
 */
import { parseArgs } from "node:util";

export const SERVICE_FILES = {
  gateway: "gateway/gateway.service.ts",
  auth: "services/auth/auth.service.ts",
  profile: "services/profile/profile.service.ts",
  chat: "services/chat/chat.service.ts",
} as const;
export type ServiceName = keyof typeof SERVICE_FILES;

/** One moleculer-runner process. */
export interface RunnerSpec {
  /** NODE_ID of the process; its workers are `${id}-1`, `${id}-2`, ... */
  id: string;
  services: ServiceName[];
  instances: number;
}

export interface ClusterOptions {
  runners: RunnerSpec[];
  /** Gateway port; 0 picks a free one. */
  port: number;
  host: string;
  /** Raise the rate limits that would throttle a load run from one client IP. */
  load: boolean;
  /** Keep the nodes' logs here; otherwise they live in the temp dir and go with it. */
  logDir: string | undefined;
  readyTimeoutMs: number;
}

/** Limits a load run from one loopback address needs; any of them set in the env wins. */
export const LOAD_LIMITS: Record<string, string> = {
  RATE_LIMIT_REGISTER_IP: "1000000/60",
  RATE_LIMIT_LOGIN_IP: "1000000/60",
  RATE_LIMIT_LOGIN_ACCOUNT: "1000000/60",
  RATE_LIMIT_SEND_USER: "1000000/60",
  RATE_LIMIT_CHAT_CREATE_USER: "1000000/60",
  RATE_LIMIT_MEMBER_ADD_USER: "1000000/60",
  WS_RATE_LIMIT: "1000/1",
};

export const USAGE = `Usage: npm run cluster -- [options]

Starts nats-server, redis-server and FerretDB on free ports (or uses NATS_URL, REDIS_URL,
MONGO_URL), then the platform's nodes with moleculer-runner, waits until /health/ready answers
200 and runs until SIGINT or SIGTERM, when it stops every process and removes its temp dir.

  --gateways N   gateway workers sharing the port (env CLUSTER_GATEWAYS, default 2)
  --auth N       auth workers (CLUSTER_AUTH, default 2)
  --profile N    profile workers (CLUSTER_PROFILE, default 2)
  --chat N       chat workers (CLUSTER_CHAT, default 2)
  --nodes SPEC   the processes instead, e.g. "gateway*2 auth+profile*2 chat chat" (CLUSTER_NODES):
                 one runner per item, services joined by +, *N forks N workers
  --port N       gateway port (PORT, default 3000; 0: a free port)
  --host H       gateway address (HOST, default 127.0.0.1)
  --load         raise the per-IP rate limits for load runs (env values win)
  --log-dir DIR  keep the nodes' logs in DIR (CLUSTER_LOG_DIR; default: the temp dir)
  --timeout S    seconds to wait for readiness (default 120)

Every other setting is read by the nodes from the env as usual (lib/config.ts); LOG_LEVEL
defaults to warn here.`;

export class UsageError extends Error {}

export function parseClusterOptions(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): ClusterOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      gateways: { type: "string" },
      auth: { type: "string" },
      profile: { type: "string" },
      chat: { type: "string" },
      nodes: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      load: { type: "boolean", default: false },
      "log-dir": { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const counted = values.gateways ?? values.auth ?? values.profile ?? values.chat;
  const nodes = values.nodes ?? env.CLUSTER_NODES;
  if (values.nodes && counted !== undefined) throw new UsageError("give either --nodes or counts, not both");
  const runners = nodes
    ? parseNodes(nodes)
    : countsToRunners({
        gateway: count("--gateways", values.gateways ?? env.CLUSTER_GATEWAYS, 2),
        auth: count("--auth", values.auth ?? env.CLUSTER_AUTH, 2),
        profile: count("--profile", values.profile ?? env.CLUSTER_PROFILE, 2),
        chat: count("--chat", values.chat ?? env.CLUSTER_CHAT, 2),
      });
  const gateways = runners.filter((r) => r.services.includes("gateway"));
  if (gateways.length !== 1) {
    throw new UsageError(
      "exactly one process must host the gateway (use *N for more gateway workers on the one port)",
    );
  }
  for (const name of ["auth", "profile", "chat"] as const) {
    if (!runners.some((r) => r.services.includes(name))) throw new UsageError(`no node hosts ${name}`);
  }
  return {
    runners,
    port: integer("--port", values.port ?? env.PORT ?? "3000", 0, 65_535),
    host: values.host ?? env.HOST ?? "127.0.0.1",
    load: values.load,
    logDir: values["log-dir"] ?? env.CLUSTER_LOG_DIR,
    readyTimeoutMs: integer("--timeout", values.timeout ?? "120", 1, 3_600) * 1_000,
  };
}

function countsToRunners(counts: Record<ServiceName, number>): RunnerSpec[] {
  return (Object.keys(SERVICE_FILES) as ServiceName[])
    .filter((name) => counts[name] > 0)
    .map((name) => ({ id: `${name}-a`, services: [name], instances: counts[name] }));
}

/** "gateway*2 auth+profile*2 chat chat" -> one runner per item. */
export function parseNodes(spec: string): RunnerSpec[] {
  const items = spec.split(/[\s;]+/).filter(Boolean);
  if (items.length === 0) throw new UsageError("--nodes is empty");
  const seen = new Map<string, number>();
  return items.map((item) => {
    const match = /^([a-z+]+)(?:\*(\d+))?$/.exec(item);
    if (!match?.[1]) throw new UsageError(`bad node item "${item}" (expected e.g. auth+profile*2)`);
    const services = match[1].split("+").filter(Boolean);
    for (const s of services) {
      if (!(s in SERVICE_FILES)) throw new UsageError(`unknown service "${s}" in "${item}"`);
    }
    if (new Set(services).size !== services.length) throw new UsageError(`"${item}" repeats a service`);
    const base = services.join("-");
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return {
      id: `${base}-${String.fromCharCode(96 + Math.min(n, 26))}${n > 26 ? n : ""}`,
      services: services as ServiceName[],
      instances: count(item, match[2], 1, 1),
    };
  });
}

function count(name: string, value: string | undefined, fallback: number, min = 0): number {
  return value === undefined ? fallback : integer(name, value, min, 64);
}

function integer(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return n;
}
