/**
 * A platform child of the file benchmark: brokers built from broker.config.ts and the env a
 * production node reads, one per inner list of `brokers` (["auth","profile","chat","gateway"] is
 * the embedded platform of `npm start`; ["gateway"] alone is a gateway node of a cluster). Only the
 * services a process hosts are imported, as `moleculer-runner gateway/gateway.service.ts` does (the
 * test support's startNode imports all four, which would put auth's password dictionary and the
 * store's code in a gateway's heap and memory figures). Reports its memory peaks on SIGUSR2
 * (memory.ts).
 */
import { ServiceBroker } from "moleculer";
import { createBrokerOptions } from "../../broker.config.ts";
import { loadConfig } from "../../lib/config.ts";
import { announce, childArgs, stopOnRequest } from "../child.ts";
import { reportPeaksOnSignal } from "./memory.ts";

export type FilesService = "auth" | "profile" | "chat" | "gateway";

export interface FilesNodeArgs {
  brokers: FilesService[][];
  env: Record<string, string>;
  memoryFile: string;
}

const SERVICES: Record<FilesService, () => Promise<{ default: unknown }>> = {
  auth: () => import("../../services/auth/auth.service.ts"),
  profile: () => import("../../services/profile/profile.service.ts"),
  chat: () => import("../../services/chat/chat.service.ts"),
  gateway: () => import("../../gateway/gateway.service.ts"),
};

/** What the test support's nodes default to besides the bench's env: metrics off, any free port. */
const NODE_ENV: Record<string, string> = { METRICS_PORT: "0", METRICS_ENABLED: "false" };

const args = childArgs<FilesNodeArgs>();
const brokers: ServiceBroker[] = [];
stopOnRequest(async () => {
  for (const broker of [...brokers].reverse()) await broker.stop();
});
reportPeaksOnSignal(args.memoryFile);

let url = "";
for (const [i, services] of args.brokers.entries()) {
  const config = loadConfig({
    ...NODE_ENV,
    ...args.env,
    NODE_ID: `bench-files-${services.join("-")}-${process.pid}-${i}`,
  });
  const broker = new ServiceBroker(createBrokerOptions(config));
  for (const name of services) broker.createService((await SERVICES[name]()).default as never);
  brokers.push(broker);
  await broker.start();
  if (services.includes("gateway")) {
    const gateway = broker.getLocalService("gateway") as unknown as { port: number };
    url = `http://127.0.0.1:${gateway.port}`;
  }
}

if (url) await waitReady(url, 120_000);
announce("ready", { url });

async function waitReady(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/health/ready`).catch((e: Error) => e);
    if (!(res instanceof Error) && res.status === 200) return;
    last = res instanceof Error ? res.message : `${res.status} ${await res.text()}`;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${base} not ready after ${timeoutMs} ms: ${last}`);
}
