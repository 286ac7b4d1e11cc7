/**
 * The chat read benchmarks: `npm run bench -- --only chatlist [options]` and `--only reactions`
 * (or `npx node bench/chat/run.ts chatlist|reactions [options]`).
 *
 * Both run the real platform in a child process (bench/ws/node.ts: brokers built by the test
 * support's startNode from a production env): by default the embedded platform (one broker with
 * every service and the embedded store, as `npm start` runs it); with `--store ferretdb` the four
 * roles as four brokers of one process over NATS, with Redis and FerretDB (PostgreSQL backend)
 * started by the test harness, as the REST figures of `npm run bench` run. The users are written
 * into the store before the platform starts (seed.ts); everything else (chats, messages, replies,
 * reactions, read marks, mutes) is made through the REST API by those users, so it is stored by
 * the server code under test. Then the bench process, alone on one kept-alive connection, times
 * GETs one at a time (from the call to the last byte), in `--runs` runs, each after the machine
 * is quiet, with the cores every process used meanwhile (cpu.ts); each figure is the median over
 * the runs of a per-run percentile.
 *
 * - chatlist: a user in `--chats` chats (5,000: half direct, half groups of 3-5; 1-3 messages
 *   each, sent in shuffled order so activity differs from creation; some read, some muted, some
 *   mentioning the user). `GET /chats?limit=50` (the first page) and the page after `--depth`
 *   chats (4,000), reached by following nextCursor, alternated, `--samples` each per run; and the
 *   time of the walk from the first page to that one. The first run walks on to the end of the
 *   list and checks it (every chat once, newest activity first); the others check the pages walked.
 * - reactions: a group of 10 members with a chat of 10 messages and 50 replies (each to a random
 *   earlier message) carrying 20 distinct emoji from 3 members each (60 reactions a message), and
 *   a chat of 60 plain messages of the same texts and senders; the ratio of their pages' medians is
 *   held to <= 1.2. Two more chats of the same texts, one with the replies alone and one with the
 *   reactions alone, tell the two costs apart. `GET /chats/:id/messages?limit=50` of each, round
 *   robin, `--samples` each per run.
 *
 * Writes bench/results/<name>-latest.{json,md} (<name>-ferretdb-latest, <name>-embedded-ferretdb-latest
 * with --store).
 */
import "../guard.ts";
import { createHash, randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { loadConfig } from "../../lib/config.ts";
import { type Servers, startServers } from "../../test/support/cluster.ts";
import type { ServiceName } from "../../test/support/platform.ts";
import { tempDir } from "../../test/support/platform.ts";
import { type CpuUse, type MeasuredPid, measureCpu, waitUntilQuiet } from "../cpu.ts";
import { type Figure, figure } from "../figures.ts";
import { type BenchChild, startChild, stopAll } from "../processes.ts";
import { summarizeProfile } from "../profile-summary.ts";
import { machine, markdownTable, textTable } from "../report.ts";
import { messageLength, messageText } from "../store/dataset.ts";
import { BENCH_ENV } from "../ws/topology.ts";
import { call, HttpError, pool, TimedClient } from "./http.ts";
import {
  EMOJI,
  followsToDepth,
  type Latency,
  type ListedChat,
  latencyOf,
  listProblems,
  type PagedMessage,
  pageProblems,
  planChatList,
  planReactions,
  seeded,
} from "./plan.ts";
import { type BenchUser, seedUsers } from "./seed.ts";

export type ChatBench = "chatlist" | "reactions";
type StoreKind = "embedded" | "ferretdb";

const USAGE = `usage: npm run bench -- --only chatlist|reactions [options]   (or: npx node bench/chat/run.ts chatlist|reactions [options])
  --store LIST      embedded, ferretdb or both (default embedded); ferretdb starts NATS, Redis and FerretDB
  --runs N          measured runs (default 5); each figure is the median over the runs
  --samples N       timed requests per kind of request and run (default 300 for chatlist, 400 for reactions)
  --chats N         chatlist: the user's chats (default 5000)
  --depth N         chatlist: the deep page starts after this many chats (default 4000)
  --limit N         chatlist: page size (default 50)
  --reactors N      reactions: members reacting with each of a message's 20 emoji (default 1: 20 reactions a message)
  --cpu-prof        the platform child writes a V8 CPU profile to bench/results/profiles/, summarized at the end
  --env NAME=VALUE  a setting of the platform nodes (lib/config.ts), over the bench's own; repeatable
Results: bench/results/<chatlist|reactions>-latest.{json,md}; with --store ferretdb or both, <name>-<stores>-latest.`;

const THIS_TREE = path.resolve(import.meta.dirname, "../..");
const RESULTS = path.join(THIS_TREE, "bench", "results");
const SEED = 20_261_206;
const WARMUP = 30;
const READY_TIMEOUT_MS = 180_000;
const QUIET = { serversBelow: 0.15, othersBelow: 0.2 };
const QUIET_TIMEOUT_MS = 60_000;
/** Set-up calls in flight while seeding through the API. */
const SEED_CONCURRENCY = 8;
/** The chat service writes a chat's summary at most once per 5 s (last-message-writer.ts). */
const SUMMARY_FLUSH_MS = 6_000;

/**
 * Limits far above what the seeding does in a minute (one user makes 5,000 chats and a few
 * thousand reactions); names the config does not know are ignored by it.
 */
const SEED_ENV: Record<string, string> = {
  RATE_LIMIT_SEND_USER: "100000000/60",
  RATE_LIMIT_CHAT_CREATE_USER: "100000000/60",
  RATE_LIMIT_MEMBER_ADD_USER: "100000000/60",
  RATE_LIMIT_REACT_USER: "100000000/60",
  RATE_LIMIT_REACTION_USER: "100000000/60",
  RATE_LIMIT_PIN_USER: "100000000/60",
  RATE_LIMIT_BLOCK_USER: "100000000/60",
  RATE_LIMIT_MUTE_USER: "100000000/60",
};

/** A digest of the server code (lib/, services/, gateway/), at the start and end, so a run during an edit says so. */
export function codeDigest(root = THIS_TREE): string {
  const hash = createHash("sha256");
  for (const dir of ["lib", "services", "gateway", "broker.config.ts"]) {
    const full = path.join(root, dir);
    const files = dir.endsWith(".ts")
      ? [full]
      : readdirSync(full, { recursive: true, encoding: "utf8" })
          .filter((f) => f.endsWith(".ts"))
          .sort()
          .map((f) => path.join(full, f));
    for (const file of files) hash.update(file.slice(root.length)).update(readFileSync(file));
  }
  return hash.digest("hex").slice(0, 12);
}

interface Options {
  stores: StoreKind[];
  runs: number;
  samples: number;
  chats: number;
  depth: number;
  limit: number;
  /** reactions: the members reacting with each of the 20 emoji of a message. */
  reactors: number;
  cpuProfDir: string | undefined;
  env: Record<string, string>;
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive whole number, not ${value}`);
  return n;
}

/** One deployed platform: its gateway URL and its processes. */
interface Platform {
  store: StoreKind;
  url: string;
  child: BenchChild;
  pids: Record<string, MeasuredPid>;
  stop(): Promise<void>;
}

/** What one kind of measured run of a benchmark answers. */
interface RunSample {
  run: number;
  cpu: CpuUse;
  [key: string]: unknown;
}

export async function runChatBench(kind: ChatBench, argv: string[], command: string): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      store: { type: "string" },
      runs: { type: "string" },
      samples: { type: "string" },
      chats: { type: "string" },
      depth: { type: "string" },
      limit: { type: "string" },
      reactors: { type: "string" },
      "cpu-prof": { type: "boolean", default: false },
      env: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const storeArg = values.store ?? "embedded";
  const stores = (storeArg === "both" ? ["embedded", "ferretdb"] : storeArg.split(",")) as StoreKind[];
  for (const s of stores)
    if (s !== "embedded" && s !== "ferretdb")
      throw new Error(`--store takes embedded, ferretdb or both, not ${s}`);
  const options: Options = {
    stores,
    runs: positiveInt(values.runs, 5, "runs"),
    samples: positiveInt(values.samples, kind === "chatlist" ? 300 : 400, "samples"),
    chats: positiveInt(values.chats, 5_000, "chats"),
    depth: positiveInt(values.depth, 4_000, "depth"),
    limit: positiveInt(values.limit, 50, "limit"),
    reactors: positiveInt(values.reactors, 1, "reactors"),
    cpuProfDir: values["cpu-prof"] ? path.join(RESULTS, "profiles") : undefined,
    env: Object.fromEntries(
      (values.env ?? []).map((pair) => {
        const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
        if (!match) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
        return [match[1] as string, match[2] as string];
      }),
    ),
  };
  if (kind === "chatlist" && options.depth + options.limit > options.chats) {
    throw new Error(`--depth ${options.depth} + --limit ${options.limit} is beyond --chats ${options.chats}`);
  }

  const begun = Date.now();
  const log = (message: string) => {
    const s = Math.round((Date.now() - begun) / 1000);
    const clock = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    process.stderr.write(`[${kind} ${clock}] ${message}\n`);
  };
  for (const name of ["NATS_URL", "REDIS_URL", "MONGO_URL", "TRANSPORTER", "DATA_DIR"])
    delete process.env[name];
  if (options.cpuProfDir) await mkdir(options.cpuProfDir, { recursive: true });

  let servers: Servers | undefined;
  const onSignal = () =>
    void stopAll()
      .then(() => servers?.stop())
      .finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const codeAtStart = codeDigest();
  const startedAt = new Date().toISOString();
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const profiles: { file: string; top: string }[] = [];
  try {
    for (const store of stores) {
      if (store === "ferretdb" && !servers) {
        servers = await startServers();
        log(`nats ${servers.nats.url}, redis ${servers.redis.url}, ferretdb ${servers.mongo.url}`);
      }
      const measured =
        kind === "chatlist"
          ? await chatList(store, options, servers, log)
          : await reactions(store, options, servers, log);
      figures.push(...measured.figures);
      details[store] = measured.details;
      if (measured.profile) profiles.push(measured.profile);
    }
  } finally {
    await stopAll();
    await servers?.stop();
  }

  const codeAtEnd = codeDigest();
  const report = {
    generatedAt: new Date().toISOString(),
    startedAt,
    command,
    machine: machine(),
    code:
      codeAtEnd === codeAtStart
        ? { digest: codeAtStart }
        : { digest: codeAtEnd, changedDuringRun: true, atStart: codeAtStart },
    settings: { ...options, warmup: WARMUP, seed: SEED, kind },
    figures,
    details,
  };
  /** chatlist-latest for the default (embedded), chatlist-ferretdb-latest and so on for the others. */
  const outName = `${kind}${stores.join() === "embedded" ? "" : `-${stores.join("-")}`}-latest`;
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, `${outName}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const m = report.machine;
  const md = [
    `# ${kind === "chatlist" ? "Chat list" : "Reactions and replies"} benchmark`,
    "",
    `Command: \`${command}\`; ${startedAt} to ${report.generatedAt}; ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}.`,
    codeAtEnd === codeAtStart
      ? `Code under test (digest of lib/, services/, gateway/): ${codeAtStart}.`
      : `The server code changed during the run: ${codeAtStart} at the start, ${codeAtEnd} at the end.`,
    `Each figure: the median over ${options.runs} runs of the run's percentile over ${options.samples} requests, one at a time, after ${WARMUP} of warm-up.`,
    "",
    markdownTable(figures),
    "",
  ].join("\n");
  await writeFile(path.join(RESULTS, `${outName}.md`), md);
  process.stdout.write(`\n${textTable(figures)}\n`);
  for (const p of profiles) process.stdout.write(`\nCPU profile ${p.file}:\n${p.top}\n`);
  if (codeAtEnd !== codeAtStart)
    log(`the server code changed during the run (${codeAtStart} -> ${codeAtEnd})`);
  log(`done in ${Math.round((Date.now() - begun) / 1000)} s; written bench/results/${outName}.{json,md}`);
  return 0;
}

/** Seeds `users` into a fresh store and starts the platform on it. */
async function deploy(
  name: string,
  store: StoreKind,
  users: number,
  options: Options,
  servers: Servers | undefined,
  log: (m: string) => void,
): Promise<{ platform: Platform; users: BenchUser[] }> {
  const dir = await tempDir(`social-bench-${name}-`);
  const namespace = `bench${name.replace(/\W/g, "")}${process.pid}`;
  const env: Record<string, string> = {
    ...BENCH_ENV,
    ...SEED_ENV,
    DATA_DIR: path.join(dir.dir, "data"),
    NAMESPACE: namespace,
    ...(store === "ferretdb" && servers
      ? {
          TRANSPORTER: servers.nats.url,
          MONGO_URL: `${servers.mongo.url}/${namespace}`,
          REDIS_URL: servers.redis.url,
        }
      : {}),
    ...options.env,
  };
  log(`${store}: seeding ${users} users`);
  const seeded = await seedUsers(loadConfig(env), users, `u${Date.now().toString(36).slice(-4)}x`, log);
  log(`${store}: ${users} users in ${seeded.seconds.toFixed(1)} s; starting the platform`);
  const brokers: ServiceName[][] =
    store === "embedded"
      ? [["auth", "profile", "chat", "gateway"]]
      : [["auth"], ["profile"], ["chat"], ["gateway"]];
  const nodeFlags = options.cpuProfDir
    ? [
        "--expose-gc",
        "--cpu-prof",
        `--cpu-prof-dir=${options.cpuProfDir}`,
        `--cpu-prof-name=${name}.cpuprofile`,
      ]
    : ["--expose-gc"];
  const child = await startChild(
    name,
    "./ws/node.ts",
    { brokers, env, memoryFile: path.join(dir.dir, "memory.json") },
    { timeoutMs: READY_TIMEOUT_MS, nodeFlags },
  );
  const pids: Record<string, MeasuredPid> = { runner: process.pid, platform: child.pid };
  if (store === "ferretdb" && servers) {
    pids["nats-server"] = servers.nats.pid;
    pids["redis-server"] = servers.redis.pid;
    pids.ferretdb = servers.mongo.pid;
    const pg = servers.mongo.postgres?.pid;
    if (pg !== undefined) pids.postgres = { tree: pg };
  }
  return {
    users: seeded.users,
    platform: {
      store,
      url: String(child.data.url),
      child,
      pids,
      stop: async () => {
        await child.stop();
        await dir.remove();
      },
    },
  };
}

/** Runs `measure` `runs` times, each once the machine is quiet, with the cores used meanwhile. */
async function measuredRuns<T extends object>(
  label: string,
  platform: Platform,
  runs: number,
  log: (m: string) => void,
  measure: (run: number) => Promise<T>,
): Promise<(T & RunSample)[]> {
  const serverPids = Object.entries(platform.pids)
    .filter(([name]) => name !== "runner")
    .map(([, pid]) => pid);
  const out: (T & RunSample)[] = [];
  for (let run = 1; run <= runs; run++) {
    if (!(await waitUntilQuiet(serverPids, QUIET, QUIET_TIMEOUT_MS))) {
      log(
        `${label} run ${run}: the machine was still busy after ${QUIET_TIMEOUT_MS / 1000} s; running anyway`,
      );
    }
    const cpu = measureCpu(platform.pids);
    const result = await measure(run);
    const used = cpu();
    out.push({ ...result, run, cpu: used });
    const named = Object.entries(used.processes)
      .map(([n, c]) => `${n} ${c.toFixed(2)}`)
      .join(", ");
    log(
      `${label} run ${run}/${runs}: ${describe(result)}; cores: ${named}, others ${used.others.toFixed(2)}`,
    );
  }
  return out;
}

function describe(result: object): string {
  return Object.entries(result)
    .filter(([, v]) => v && typeof v === "object" && "p50" in v)
    .map(([k, v]) => `${k} p50 ${(v as Latency).p50.toFixed(2)} / p99 ${(v as Latency).p99.toFixed(2)} ms`)
    .join("; ");
}

const medianOfRuns = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function profileOf(options: Options, name: string): Promise<{ file: string; top: string } | undefined> {
  if (!options.cpuProfDir) return undefined;
  const file = `${name}.cpuprofile`;
  if (!(await readdir(options.cpuProfDir)).includes(file)) return undefined;
  return {
    file: `bench/results/profiles/${file}`,
    top: await summarizeProfile(path.join(options.cpuProfDir, file), 25),
  };
}

interface ChatListPage {
  chats: (ListedChat & { unreadCount?: number; mentionCount?: number; muted?: boolean })[];
  hasMore?: boolean;
  nextCursor?: string | null;
}

class NotImplemented extends Error {}

async function chatList(
  store: StoreKind,
  o: Options,
  servers: Servers | undefined,
  log: (m: string) => void,
): Promise<{ figures: Figure[]; details: unknown; profile?: { file: string; top: string } }> {
  const name = `chatlist-${store}`;
  const plan = planChatList(SEED, o.chats, Math.max(4, Math.ceil(o.chats / 2)));
  const others = Math.max(4, Math.ceil(o.chats / 2));
  const { platform, users } = await deploy(name, store, 1 + others, o, servers, log);
  const [heavy, ...rest] = users as [BenchUser, ...BenchUser[]];
  const base = platform.url;
  const seedNotes: string[] = [];
  try {
    // The chats, in the plan's order of creation.
    const t0 = Date.now();
    const ids: string[] = new Array(plan.chats.length);
    await pool(plan.chats, SEED_CONCURRENCY, async (chat, i) => {
      const body =
        chat.type === "direct"
          ? { type: "direct", userId: (rest[chat.others[0] as number] as BenchUser).id }
          : {
              type: "group",
              name: `bench group ${i}`,
              memberIds: chat.others.map((u) => (rest[u] as BenchUser).id),
            };
      ids[i] = (await call<{ id: string }>(base, heavy.token, "POST", "/chats", body)).id;
      if ((i + 1) % 1_000 === 0) log(`${store}: ${i + 1} chats made`);
    });
    const chatsS = (Date.now() - t0) / 1000;
    // The messages, one send at a time per chat, in the plan's shuffled order.
    const t1 = Date.now();
    const random = seeded(SEED + 1);
    const lastSeq = new Array<number>(plan.chats.length).fill(0);
    let sent = 0;
    await pool(plan.sends, SEED_CONCURRENCY, async ([c, k]) => {
      const chat = plan.chats[c] as (typeof plan.chats)[number];
      const sender = chat.senders[k] as number;
      const user = sender === -1 ? heavy : (rest[sender] as BenchUser);
      const text = messageText(random, messageLength(random));
      const message = chat.mentions[k] ? `@${heavy.username} ${text}` : text;
      const answer = await call<{ seq: number }>(base, user.token, "POST", `/chats/${ids[c]}/messages`, {
        message,
        clientMsgId: randomUUID(),
      });
      lastSeq[c] = Math.max(lastSeq[c] as number, answer.seq);
      if (++sent % 2_000 === 0) log(`${store}: ${sent} of ${plan.sends.length} messages sent`);
    });
    const sendsS = (Date.now() - t1) / 1000;
    const t2 = Date.now();
    const reads = plan.chats.flatMap((chat, i) => (chat.read ? [i] : []));
    await pool(reads, SEED_CONCURRENCY, async (i) => {
      await call(base, heavy.token, "POST", `/chats/${ids[i]}/read`, { seq: lastSeq[i] });
    });
    const mutes = plan.chats.flatMap((chat, i) => (chat.muted ? [i] : []));
    try {
      await pool(mutes, SEED_CONCURRENCY, async (i) => {
        await call(base, heavy.token, "PUT", `/chats/${ids[i]}/mute`, { until: null });
      });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      seedNotes.push(`mutes not made: ${err.message.slice(0, 200)}`);
      log(`${store}: ${seedNotes.at(-1)}`);
    }
    log(
      `${store}: ${ids.length} chats in ${chatsS.toFixed(1)} s, ${plan.sends.length} messages in ${sendsS.toFixed(1)} s, ${reads.length} read and ${mutes.length} muted in ${((Date.now() - t2) / 1000).toFixed(1)} s`,
    );
    await sleep(SUMMARY_FLUSH_MS);

    const expected = new Set(ids);
    const client = new TimedClient(base);
    const first = `/chats?limit=${o.limit}`;
    const follows = followsToDepth(o.depth, o.limit);
    const page = (cursor: string) => `${first}&cursor=${encodeURIComponent(cursor)}`;
    /** The whole list, page by page: each page's time, the cursor of the deep page, and what is wrong. */
    const walk = async (toEnd: boolean) => {
      const listed: ChatListPage["chats"] = [];
      const times: number[] = [];
      let deepCursor: string | undefined;
      let bytes = 0;
      let cursor: string | null | undefined;
      for (let n = 0; ; n++) {
        const { timed, body } = await client.json<ChatListPage>(cursor ? page(cursor) : first, heavy.token);
        times.push(timed.ms);
        if (n === follows) bytes = timed.bytes;
        if (!("nextCursor" in body)) {
          throw new NotImplemented(
            `GET /chats answers no nextCursor (${body.chats.length} chats, keys ${Object.keys(body).join(",")}): the server does not page the list yet`,
          );
        }
        listed.push(...body.chats);
        if (!toEnd && n === follows) break;
        if (!body.hasMore || !body.nextCursor) break;
        cursor = body.nextCursor;
        if (n + 1 === follows) deepCursor = cursor;
        if (n > o.chats) throw new Error("the list does not end");
      }
      return {
        listed,
        times,
        deepCursor,
        bytes,
        problems: listProblems(listed, toEnd ? expected : undefined),
      };
    };
    // The first run walks the whole list and checks it; the others walk to the deep page and check that far.
    const runs = await measuredRuns(name, platform, o.runs, log, async (run) => {
      const w = await walk(run === 1);
      if (w.problems.length) log(`${store}: the list is wrong: ${w.problems.join("; ")}`);
      if (!w.deepCursor) throw new Error(`the list ended before page ${follows + 1}`);
      const deep = page(w.deepCursor);
      const firstTimes: number[] = [];
      const deepTimes: number[] = [];
      let firstBytes = 0;
      for (let i = 0; i < WARMUP + o.samples; i++) {
        const a = await client.get(first, heavy.token);
        const b = await client.get(deep, heavy.token);
        if (a.status !== 200 || b.status !== 200) {
          throw new Error(
            `GET /chats answered ${a.status} / ${b.status}: ${(a.text ?? b.text ?? "").slice(0, 300)}`,
          );
        }
        firstBytes = a.bytes;
        if (i >= WARMUP) {
          firstTimes.push(a.ms);
          deepTimes.push(b.ms);
        }
      }
      const walkToDeep = w.times.slice(0, follows + 1).reduce((s, t) => s + t, 0);
      const listedDeep = w.listed.slice(o.depth, o.depth + o.limit);
      return {
        firstPage: latencyOf(firstTimes),
        deepPage: latencyOf(deepTimes),
        walkToDeepMs: walkToDeep,
        walkPages: w.times.length,
        walkPageP50: latencyOf(w.times.slice(0, follows + 1)).p50,
        firstBytes,
        deepBytes: w.bytes,
        problems: w.problems,
        unread: listedDeep.filter((c) => (c.unreadCount ?? 0) > 0).length,
      };
    });
    client.close();
    const cpu = runs.map((r) => r.cpu);
    const label = store === "embedded" ? "embedded" : "FerretDB";
    const firstP50 = figure({
      id: `${name}.first.p50`,
      label: `GET /chats first page (limit ${o.limit}), ${o.chats.toLocaleString("en-US")} chats, ${label}, p50`,
      unit: "ms",
      runs: runs.map((r) => r.firstPage.p50),
      cpu,
    });
    const fs: Figure[] = [
      firstP50,
      figure({
        id: `${name}.first.p99`,
        label: `first page, ${label}, p99`,
        unit: "ms",
        runs: runs.map((r) => r.firstPage.p99),
        cpu,
      }),
      figure({
        id: `${name}.deep.p50`,
        label: `page after ${o.depth.toLocaleString("en-US")} chats (by nextCursor), ${label}, p50`,
        unit: "ms",
        runs: runs.map((r) => r.deepPage.p50),
        baseline: firstP50,
        cpu,
      }),
      figure({
        id: `${name}.deep.p99`,
        label: `deep page, ${label}, p99`,
        unit: "ms",
        runs: runs.map((r) => r.deepPage.p99),
        cpu,
      }),
      figure({
        id: `${name}.walk`,
        label: `walk from the first page to the deep one (${follows + 1} pages), ${label}`,
        unit: "ms",
        runs: runs.map((r) => r.walkToDeepMs),
        cpu,
      }),
    ];
    const problems = [...new Set(runs.flatMap((r) => r.problems))];
    await platform.stop();
    const profile = await profileOf(o, name);
    return {
      figures: problems.length
        ? fs.map((f) => ({
            ...f,
            note: [f.note, `the list was wrong: ${problems.join("; ")}`].filter(Boolean).join("; "),
          }))
        : fs,
      details: {
        seeding: { chats: ids.length, messages: plan.sends.length, chatsS, sendsS, notes: seedNotes },
        medians: {
          firstBytes: medianOfRuns(runs.map((r) => r.firstBytes)),
          deepBytes: medianOfRuns(runs.map((r) => r.deepBytes)),
          walkPagesFirstRun: runs[0]?.walkPages,
          walkPageP50: medianOfRuns(runs.map((r) => r.walkPageP50)),
        },
        runs,
      },
      ...(profile ? { profile } : {}),
    };
  } catch (err) {
    await platform.stop();
    throw err;
  }
}

interface HistoryPage {
  messages: PagedMessage[];
  hasMore: boolean;
}

/** The history chats' shape; `perEmoji` is the run's --reactors. */
const SHAPE = { originals: 10, replies: 50, members: 10, emoji: EMOJI.length, perEmoji: 1 };

type HistoryKey = "plain" | "both" | "replies" | "reactions";
interface HistoryChat {
  key: HistoryKey;
  label: string;
  replies: boolean;
  reactions: boolean;
  id: string;
  messageIds: string[];
}
/** The four chats: the measured pair (plain, both), and one of each half to tell their costs apart. */
const HISTORY_CHATS: Omit<HistoryChat, "id" | "messageIds">[] = [
  {
    key: "plain",
    label: "GET /chats/:id/messages?limit=50, 50 plain messages",
    replies: false,
    reactions: false,
  },
  {
    key: "both",
    label: "the same, 50 replies with 20 emoji each (--reactors users each)",
    replies: true,
    reactions: true,
  },
  { key: "replies", label: "the same, 50 replies, no reactions", replies: true, reactions: false },
  {
    key: "reactions",
    label: "the same, 50 messages with the reactions, no replies",
    replies: false,
    reactions: true,
  },
];

async function reactions(
  store: StoreKind,
  o: Options,
  servers: Servers | undefined,
  log: (m: string) => void,
): Promise<{ figures: Figure[]; details: unknown; profile?: { file: string; top: string } }> {
  const name = `reactions-${store}`;
  SHAPE.perEmoji = Math.min(o.reactors, SHAPE.members);
  const plan = planReactions(SEED, SHAPE);
  const { platform, users } = await deploy(name, store, SHAPE.members, o, servers, log);
  const owner = users[0] as BenchUser;
  const base = platform.url;
  try {
    const group = async (label: string) =>
      (
        await call<{ id: string }>(base, owner.token, "POST", "/chats", {
          type: "group",
          name: label,
          memberIds: users.slice(1).map((u) => u.id),
        })
      ).id;
    const total = SHAPE.originals + SHAPE.replies;
    // The same texts and senders in every chat, so the pages differ only by replies and reactions.
    const random = seeded(SEED + 2);
    const texts = Array.from({ length: total }, () => messageText(random, messageLength(random)));
    const senders = Array.from({ length: total }, () => Math.floor(random() * SHAPE.members));
    const chats: HistoryChat[] = [];
    for (const kind of HISTORY_CHATS) chats.push({ ...kind, id: await group(kind.key), messageIds: [] });
    const t0 = Date.now();
    for (const chat of chats) {
      for (let i = 0; i < total; i++) {
        const replyTo =
          chat.replies && i >= SHAPE.originals
            ? chat.messageIds[plan.replyTo[i - SHAPE.originals] as number]
            : undefined;
        const sender = users[senders[i] as number] as BenchUser;
        const answer = await call<{ id: string; replyTo?: unknown }>(
          base,
          sender.token,
          "POST",
          `/chats/${chat.id}/messages`,
          { message: texts[i], clientMsgId: randomUUID(), ...(replyTo ? { replyTo } : {}) },
        );
        if (replyTo && !answer.replyTo) {
          throw new NotImplemented(
            "POST /chats/:id/messages with replyTo answers no replyTo: the server stores no replies yet",
          );
        }
        chat.messageIds.push(answer.id);
      }
    }
    const sendsS = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    let reactionsMade = 0;
    for (const chat of chats.filter((c) => c.reactions)) {
      await pool(plan.reactions, SEED_CONCURRENCY, async (list, j) => {
        const messageId = chat.messageIds[SHAPE.originals + j] as string;
        for (const [member, e] of list) {
          const user = users[member] as BenchUser;
          const emoji = encodeURIComponent(EMOJI[e] as string);
          const path = `/chats/${chat.id}/messages/${encodeURIComponent(messageId)}/reactions/${emoji}`;
          try {
            await call(base, user.token, "PUT", path);
            reactionsMade += 1;
          } catch (err) {
            if (err instanceof HttpError && err.status === 404 && !err.body.includes("MESSAGE_NOT_FOUND")) {
              throw new NotImplemented(`PUT .../reactions/:emoji answered 404: ${err.body.slice(0, 200)}`);
            }
            throw err;
          }
        }
      });
    }
    const reactS = (Date.now() - t1) / 1000;
    log(
      `${store}: ${chats.length * total} messages in ${sendsS.toFixed(1)} s, ${reactionsMade} reactions in ${reactS.toFixed(1)} s`,
    );
    await sleep(SUMMARY_FLUSH_MS);

    const client = new TimedClient(base);
    const pathOf = (id: string) => `/chats/${id}/messages?limit=50`;
    const check = async () => {
      const problems: string[] = [];
      for (const chat of chats) {
        const { body } = await client.json<HistoryPage>(pathOf(chat.id), owner.token);
        const shape = {
          length: 50,
          replies: chat.replies,
          emoji: chat.reactions ? SHAPE.emoji : 0,
          perEmoji: chat.reactions ? SHAPE.perEmoji : 0,
        };
        problems.push(...pageProblems(body.messages, shape).map((p) => `${chat.key}: ${p}`));
      }
      return problems;
    };
    const runs = await measuredRuns(name, platform, o.runs, log, async () => {
      const problems = await check();
      if (problems.length) log(`${store}: ${problems.join("; ")}`);
      const times = new Map<HistoryKey, number[]>(chats.map((c) => [c.key, []]));
      const bytes = new Map<HistoryKey, number>();
      for (let i = 0; i < WARMUP + o.samples; i++) {
        // Round robin, each round starting one chat further, so drift and the order cost each the same.
        for (let k = 0; k < chats.length; k++) {
          const chat = chats[(i + k) % chats.length] as HistoryChat;
          const t = await client.get(pathOf(chat.id), owner.token);
          if (t.status !== 200)
            throw new Error(`GET ${pathOf(chat.id)} answered ${t.status}: ${t.text?.slice(0, 300)}`);
          if (i < WARMUP) continue;
          times.get(chat.key)?.push(t.ms);
          bytes.set(chat.key, t.bytes);
        }
      }
      const pages = Object.fromEntries(
        chats.map((c) => [c.key, latencyOf(times.get(c.key) ?? [])]),
      ) as Record<HistoryKey, Latency>;
      return {
        ...pages,
        ratio: pages.both.p50 / pages.plain.p50,
        bytes: Object.fromEntries(bytes) as Record<HistoryKey, number>,
        problems,
      };
    });
    client.close();
    const cpu = runs.map((r) => r.cpu);
    const label = store === "embedded" ? "embedded" : "FerretDB";
    const problems = [...new Set(runs.flatMap((r) => r.problems))];
    const p50 = (key: HistoryKey, baseline?: Figure, target = false) =>
      figure({
        id: `${name}.${key}.p50`,
        label: `${chats.find((c) => c.key === key)?.label}, ${label}, p50`,
        unit: "ms",
        runs: runs.map((r) => r[key].p50),
        ...(baseline ? { baseline } : {}),
        ...(target ? { target: { on: "ratio", op: "<=", value: 1.2 } as const } : {}),
        cpu,
        ...(problems.length ? { note: `the pages were wrong: ${problems.join("; ")}` } : {}),
      });
    const p99 = (key: HistoryKey) =>
      figure({
        id: `${name}.${key}.p99`,
        label: `${key} page, ${label}, p99`,
        unit: "ms",
        runs: runs.map((r) => r[key].p99),
        cpu,
      });
    const plainP50 = p50("plain");
    const fs = [
      plainP50,
      p50("both", plainP50, true),
      p50("replies", plainP50),
      p50("reactions", plainP50),
      ...HISTORY_CHATS.map((c) => p99(c.key)),
    ];
    await platform.stop();
    const profile = await profileOf(o, name);
    return {
      figures: fs,
      details: {
        seeding: { messages: chats.length * total, reactions: reactionsMade, sendsS, reactS },
        medians: {
          ratioPerRun: runs.map((r) => r.ratio),
          bytes: Object.fromEntries(
            HISTORY_CHATS.map((c) => [c.key, medianOfRuns(runs.map((r) => r.bytes[c.key] ?? Number.NaN))]),
          ),
        },
        runs,
      },
      ...(profile ? { profile } : {}),
    };
  } catch (err) {
    await platform.stop();
    throw err;
  }
}

/** Exit codes: 0 measured, 1 failed, 2 the server does not implement what is measured yet. */
export async function main(argv: string[], command: string): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind !== "chatlist" && kind !== "reactions") {
    process.stdout.write(`${USAGE}\n`);
    return kind === "--help" || kind === "-h" ? 0 : 1;
  }
  try {
    return await runChatBench(kind, rest, command);
  } catch (err) {
    if (err instanceof NotImplemented) {
      process.stderr.write(`${kind}: not measurable yet: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(
      `${kind} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  process.exit(await main(argv, `npx node bench/chat/run.ts ${argv.join(" ")}`));
}
