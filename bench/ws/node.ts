/**
 * A server child of the WebSocket benchmark: platform brokers built by the test support's
 * startNode from the env a production node reads. Each inner list of `brokers` is one broker (the
 * embedded topology is one broker with every service, as `npm start` runs; the cluster runs one
 * broker per role over NATS). Reports its memory on SIGUSR2 (memory.ts); with `metricsFile` and
 * METRICS_ENABLED=true, also writes every broker's metrics there then and when it stops (`-N.json`,
 * numbered), so a run can tell which calls and store operations took the time.
 */
import { writeFileSync } from "node:fs";
import { collectStoreThreads } from "../../lib/store/embedded-thread.ts";
import { type PlatformNode, type ServiceName, startNode, waitReady } from "../../test/support/platform.ts";
import { announce, childArgs, stopOnRequest } from "../child.ts";
import { reportMemoryOnSignal } from "./memory.ts";

const args = childArgs<{
  brokers: ServiceName[][];
  env: Record<string, string>;
  memoryFile: string;
  metricsFile?: string;
}>();

const nodes: PlatformNode[] = [];
let dumps = 0;
const dumpMetrics = () => {
  if (!args.metricsFile) return;
  const brokers = nodes
    .filter((n) => n.broker.isMetricsEnabled())
    .map((n) => ({ nodeID: n.broker.nodeID, metrics: n.broker.metrics.list({}) }));
  if (brokers.length > 0) writeFileSync(`${args.metricsFile}-${++dumps}.json`, JSON.stringify(brokers));
};
stopOnRequest(async () => {
  dumpMetrics();
  for (const node of [...nodes].reverse()) await node.stop();
});
reportMemoryOnSignal(args.memoryFile, collectStoreThreads);
process.on("SIGUSR2", dumpMetrics);

for (const [i, services] of args.brokers.entries()) {
  nodes.push(
    await startNode(services, { ...args.env, NODE_ID: `bench-ws-${services.join("-")}-${process.pid}-${i}` }),
  );
}
const url = nodes.map((n) => n.url).find(Boolean) ?? "";
if (url) await waitReady(url, 120_000);
announce("ready", { url });
