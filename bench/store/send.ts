/**
 * A child of the store growth benchmark: send throughput through the real chat service. One
 * embedded broker (no transporter), built by the store's tree from its broker.config.ts and
 * lib/config.ts with DATA_DIR set, hosts that tree's chat service, which opens the store itself
 * (`placement: "main"` swaps lib/store/index.ts for main-thread-store.ts first). The chat service
 * needs nothing else for a send: the pre-seeded users are members already, and with no gateway
 * there is no one to deliver to, so what is measured is the send path to the store (membership
 * check, the batching appender, the chat summary writer).
 *
 * `concurrency` loops each call `chat.send` (as `meta.user` = a member of the chat) for a chat
 * drawn by the fill's Zipf weights, with a message of the fill's lengths, after a warm-up; sends
 * answered within the window count. The per-user send limit (RATE_LIMIT_SEND_USER, where the tree
 * has one) is set far above the rate of the benchmark's users; every refused send is counted. Event-loop delay (`monitorEventLoopDelay`, resolution 1 ms),
 * the cores this process used and those others used are measured over the window.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type * as BrokerConfig from "../../broker.config.ts";
import type * as Config from "../../lib/config.ts";
import type * as Chat from "../../services/chat/chat.service.ts";
import { announce, childArgs } from "../child.ts";
import { measureCpu } from "../cpu.ts";
import { chatPicker, clientMsgIdOf, type Manifest, messageLength, messageText, seeded } from "./dataset.ts";
import { fromTree, type StoreTarget } from "./stores.ts";

export interface SendArgs {
  target: StoreTarget;
  dataDir: string;
  manifestFile: string;
  warmupS: number;
  durationS: number;
  concurrency: number;
  seed: number;
}

export interface SendResult {
  sendsPerS: number;
  sends: number;
  failures: number;
  firstFailure?: string;
  p50Ms: number;
  p99Ms: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  eventLoopSamples: number;
  /** The broker's start, the store's open included. */
  startMs: number;
  cores: number;
  otherCores: number;
}

const args = childArgs<SendArgs>();
const { tree } = args.target;
if (args.target.placement === "main") (await import("./main-thread-store.ts")).useMainThreadStore();
const moleculer = createRequire(path.join(tree, "package.json"))("moleculer") as typeof import("moleculer");
const { createBrokerOptions } = await fromTree<typeof BrokerConfig>(tree, "broker.config.ts");
const { loadConfig } = await fromTree<typeof Config>(tree, "lib/config.ts");
const ChatService = (await fromTree<typeof Chat>(tree, "services/chat/chat.service.ts")).default;
const manifest = JSON.parse(await readFile(args.manifestFile, "utf8")) as Manifest;

const config = loadConfig({
  DATA_DIR: args.dataDir,
  NODE_ID: `bench-store-${process.pid}`,
  LOG_LEVEL: "warn",
  METRICS_ENABLED: "false",
  HOST: "127.0.0.1",
  PORT: "0",
  // 1,000 users sending thousands of messages a second: far beyond a person's pace (120/60).
  RATE_LIMIT_SEND_USER: "100000000/60",
  ...(args.target.synchronous ? { EMBEDDED_SYNCHRONOUS: args.target.synchronous } : {}),
});
const broker = new moleculer.ServiceBroker(createBrokerOptions(config));
broker.createService(ChatService as never);
const startedAt = performance.now();
await broker.start();
const startMs = performance.now() - startedAt;

const random = seeded(args.seed);
const pick = chatPicker(manifest.chats, random);
const latencies: number[] = [];
let measuring = false;
let stopping = false;
let failures = 0;
let firstFailure: string | undefined;

const loop = async () => {
  while (!stopping) {
    const chat = manifest.chats[pick()] as Manifest["chats"][number];
    const sender = chat.members[Math.floor(random() * chat.members.length)] as string;
    const params = {
      id: chat.id,
      message: messageText(random, messageLength(random)),
      clientMsgId: clientMsgIdOf(random),
    };
    const counted = measuring;
    const sent = performance.now();
    try {
      await broker.call("chat.send", params, { meta: { user: { id: sender, sessionId: "bench" } } });
      if (counted && measuring) latencies.push(performance.now() - sent);
    } catch (err) {
      if (counted && measuring) failures += 1;
      firstFailure ??= err instanceof Error ? err.message : String(err);
    }
  }
};

const loops = Array.from({ length: args.concurrency }, loop);
await sleep(args.warmupS * 1000);
const eld = monitorEventLoopDelay({ resolution: 1 });
const cpu = measureCpu({ self: process.pid });
eld.enable();
measuring = true;
const windowStart = performance.now();
await sleep(args.durationS * 1000);
measuring = false;
const windowS = (performance.now() - windowStart) / 1000;
eld.disable();
const use = cpu();
stopping = true;
await Promise.all(loops);
await broker.stop();

latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
announce("result", {
  sendsPerS: latencies.length / windowS,
  sends: latencies.length,
  failures,
  ...(firstFailure ? { firstFailure } : {}),
  p50Ms: at(0.5),
  p99Ms: at(0.99),
  eventLoopP99Ms: eld.percentile(99) / 1e6,
  eventLoopMaxMs: eld.max / 1e6,
  eventLoopSamples: eld.count,
  startMs,
  cores: use.processes.self ?? 0,
  otherCores: use.others,
} satisfies SendResult);

process.exit(0);
