/**
 * `npm run bench [-- --runs N --duration S --quick --cpu-prof]`: measures, on this machine and in
 * one go, bare node:http (baseline A), the trivial moleculer-web -> NATS -> service call (baseline
 * B), `GET /users/:id` through the full platform, argon2id hash rates, and registration and login
 * through the gateway; every figure is the median of several runs, shown with its spread and its
 * ratio to a baseline measured in the same run. Writes bench/results/latest.{json,md}.
 *
 * The servers under test run in child processes; this process is the load generator. NATS, Redis
 * and FerretDB are started on free ports of 127.0.0.1 (NATS_URL, REDIS_URL and MONGO_URL are
 * ignored), nothing may connect beyond loopback (guard.ts), and every process is stopped by pid at
 * the end, on error, on Ctrl-C and when the watchdog fires.
 */
import "./guard.ts";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PLATFORM_NODE_FLAGS } from "../lib/node-flags.ts";
import { type Servers, startServers } from "../test/support/cluster.ts";
import type { Figure } from "./figures.ts";
import { OWASP_MIN } from "./hash-rate.ts";
import { stopAll } from "./processes.ts";
import { summarizeProfile } from "./profile-summary.ts";
import { machine, markdown, type Report, textTable } from "./report.ts";
import {
  AUTH_CONNECTIONS,
  authFlows,
  bareHttp,
  echoCall,
  fasterHash,
  HTTP_CONNECTIONS,
  hashRates,
  nodeFlagsOption,
  PACED_SHARE,
  type ProcessInfo,
  postgresTree,
  profileReads,
  QUIET_TIMEOUT_MS,
  SERVICE_HASH_CONCURRENCY,
  type Settings,
  scalingReads,
} from "./scenarios.ts";
import { measureSerializers, serializerTable } from "./serializers.ts";
import { WS_DEFAULTS, type WsOptions, wsBudgetS, wsFanout, wsSettings } from "./ws/scenario.ts";
import { BENCH_ENV as WS_BENCH_ENV } from "./ws/topology.ts";

const USAGE = `usage: npm run bench -- [--runs N] [--duration S] [--quick] [--split] [--cpu-prof] [--env NAME=VALUE ...] [--node-flags=F]
  --runs N          measured runs per figure (default 3); each figure is their median
  --duration S      seconds per run (default 10)
  --quick           smoke test: runs 1, duration 3
  --split           every broker in a process of its own (default: one process per scenario)
  --cpu-prof        the server children write V8 CPU profiles to bench/results/profiles/, summarized at the
                    end (profiling slows the servers down)
  --env NAME=VALUE  a setting of the platform nodes (lib/config.ts), e.g. --env HASH_CONCURRENCY=4; repeatable
  --node-flags=F    the platform processes' Node flags, space-separated, instead of lib/node-flags.ts's
                    (${PLATFORM_NODE_FLAGS.join(" ")}); "" for none; the baselines run without
  --only PART       one part with its baselines: reads (A, B, profile reads, scaling) or auth (hash rates,
                    register, login); implies --no-ws; --only store runs the store growth benchmark
                    (bench/store/run.ts, its options after it; --only store --help lists them); --only chatlist
                    and --only reactions run the chat read benchmarks (bench/chat/run.ts; --help after them);
                    --only files runs the upload and download benchmark (bench/files/run.ts; --help after it);
                    --only accounts the sign-in, mail burst and push benchmark (bench/accounts/run.ts)
  --ws-connections N  sockets of the WebSocket benchmark (bench/ws; default 10000); --ws-rate R its
                    messages/s (default 100); --no-ws skips it (\`npx node bench/ws/run.ts\` runs it alone)
Results go to bench/results/latest.{json,md}; with --quick, --split, --cpu-prof, --env or --node-flags to a file named
after them (e.g. quick-split.json), so only a default run replaces latest.*.`;

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${value}`);
  return n;
}

const argv = process.argv.slice(2);
const storeAt = argv.findIndex((a, i) => a === "--only=store" || (a === "--only" && argv[i + 1] === "store"));
if (storeAt !== -1) {
  const rest = argv.filter((_, i) => i !== storeAt && !(argv[storeAt] === "--only" && i === storeAt + 1));
  const { runStoreBench } = await import("./store/run.ts");
  process.exit(await runStoreBench(rest, `npm run bench -- ${argv.join(" ")}`));
}
const chatAt = argv.findIndex(
  (a, i) =>
    /^--only=(chatlist|reactions)$/.test(a) ||
    (a === "--only" && (argv[i + 1] === "chatlist" || argv[i + 1] === "reactions")),
);
if (chatAt !== -1) {
  const inline = argv[chatAt]?.startsWith("--only=");
  const kind = inline ? (argv[chatAt] as string).slice("--only=".length) : (argv[chatAt + 1] as string);
  const rest = argv.filter((_, i) => i !== chatAt && !(!inline && i === chatAt + 1));
  const { main: runChat } = await import("./chat/run.ts");
  process.exit(await runChat([kind, ...rest], `npm run bench -- ${argv.join(" ")}`));
}
const filesAt = argv.findIndex((a, i) => a === "--only=files" || (a === "--only" && argv[i + 1] === "files"));
if (filesAt !== -1) {
  const inline = argv[filesAt] === "--only=files";
  const rest = argv.filter((_, i) => i !== filesAt && !(!inline && i === filesAt + 1));
  const { runFilesBench } = await import("./files/run.ts");
  let code = 1;
  try {
    code = await runFilesBench(rest, `npm run bench -- ${argv.join(" ")}`);
  } catch (err) {
    process.stderr.write(
      `files failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exit(code);
}
const accountsAt = argv.findIndex(
  (a, i) => a === "--only=accounts" || (a === "--only" && argv[i + 1] === "accounts"),
);
if (accountsAt !== -1) {
  const inline = argv[accountsAt] === "--only=accounts";
  const rest = argv.filter((_, i) => i !== accountsAt && !(!inline && i === accountsAt + 1));
  const { runAccountsBench } = await import("./accounts/run.ts");
  let code = 1;
  try {
    code = await runAccountsBench(rest, `npm run bench -- ${argv.join(" ")}`);
  } catch (err) {
    process.stderr.write(
      `accounts failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exit(code);
}
const { values } = parseArgs({
  args: argv,
  options: {
    runs: { type: "string" },
    duration: { type: "string" },
    quick: { type: "boolean", default: false },
    split: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    "ws-connections": { type: "string" },
    "ws-rate": { type: "string" },
    "no-ws": { type: "boolean", default: false },
    only: { type: "string" },
    env: { type: "string", multiple: true, default: [] },
    "node-flags": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const only = values.only;
if (only !== undefined && only !== "reads" && only !== "auth") {
  throw new Error(`--only takes reads, auth, store, chatlist, reactions or files, not ${only}`);
}
if (only) values["no-ws"] = true;
const runs = positiveInt(values.runs, values.quick ? 1 : 3, "runs");
const durationS = positiveInt(values.duration, values.quick ? 3 : 10, "duration");
const warmupS = Math.min(3, durationS);
const cpuProfDir = values["cpu-prof"] ? path.join(RESULTS, "profiles") : undefined;
/** Smoke tests, split topologies, profiled runs and changed settings never overwrite latest.*. */
const outName =
  [
    values.quick ? "quick" : "",
    values.split ? "split" : "",
    values["cpu-prof"] ? "cpu-prof" : "",
    values.env?.length ? "env" : "",
    values["node-flags"] !== undefined ? "node-flags" : "",
    only ? `only-${only}` : "",
    !only && values["no-ws"] ? "no-ws" : values["ws-connections"] || values["ws-rate"] ? "ws" : "",
  ]
    .filter(Boolean)
    .join("-") || "latest";
const platformEnv = Object.fromEntries(
  (values.env ?? []).map((pair) => {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!match) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
    return [match[1] as string, match[2] as string];
  }),
);

const wsOptions: WsOptions | undefined = values["no-ws"]
  ? undefined
  : {
      ...WS_DEFAULTS,
      connections: positiveInt(values["ws-connections"], WS_DEFAULTS.connections, "ws-connections"),
      rate: positiveInt(values["ws-rate"], WS_DEFAULTS.rate, "ws-rate"),
    };

const begun = Date.now();
const log = (message: string) => {
  const s = Math.round((Date.now() - begun) / 1000);
  process.stderr.write(
    `[bench ${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}] ${message}\n`,
  );
};
const settings: Settings = {
  runs,
  durationS,
  warmupS,
  cpuProfDir,
  split: values.split,
  platformEnv,
  platformNodeFlags: nodeFlagsOption(values["node-flags"]),
  infraPids: {},
  log,
};

/**
 * 10 load scenarios with a warm-up each and up to 40 s of draining per paced run, 4 hash
 * configurations: twice that, plus the longest wait for a quiet machine before every run, plus
 * start-up slack.
 */
const budgetMs =
  (2 * (10 * (warmupS + runs * durationS) + 7 * (runs + 1) * 40 + 4 * runs * (durationS + 2)) + 300) * 1000 +
  14 * runs * QUIET_TIMEOUT_MS +
  (values["no-ws"] ? 0 : wsBudgetS(runs, durationS) * 1000);

let servers: Servers | undefined;
let cleaning: Promise<void> | undefined;
const cleanup = () => {
  cleaning ??= (async () => {
    await stopAll();
    await servers?.stop();
  })();
  return cleaning;
};

const abort = (reason: string, code: number) => {
  log(`${reason}; stopping every process`);
  void cleanup().finally(() => process.exit(code));
};
process.once("SIGINT", () => abort("interrupted", 130));
process.once("SIGTERM", () => abort("terminated", 143));
const watchdog = setTimeout(() => abort(`watchdog: still running after ${budgetMs / 1000} s`, 1), budgetMs);
watchdog.unref();

async function main(): Promise<void> {
  const machineInfo = machine();
  log(
    `${runs} run(s) of ${durationS} s per figure on ${machineInfo.cores} cores, ${machineInfo.cpuModel}, Node ${machineInfo.node}; time limit ${budgetMs / 1000} s`,
  );
  if (cpuProfDir) await mkdir(cpuProfDir, { recursive: true });
  for (const variable of ["NATS_URL", "REDIS_URL", "MONGO_URL"]) delete process.env[variable];
  servers = await startServers();
  const infra = { nats: servers.nats.url, redis: servers.redis.url, mongo: servers.mongo.url };
  settings.infraPids = {
    "nats-server": servers.nats.pid,
    "redis-server": servers.redis.pid,
    ferretdb: servers.mongo.pid,
    postgres: postgresTree(servers),
  };
  log(`nats ${infra.nats}, redis ${infra.redis}, ferretdb ${infra.mongo}`);

  const processes: ProcessInfo[] = [];
  const figures: Figure[] = [];
  const byId = (id: string) => {
    const f = figures.find((x) => x.id === id);
    if (!f) throw new Error(`figure ${id} was not measured`);
    return f;
  };
  const add = (measured: { figures: Figure[]; processes: ProcessInfo[] }) => {
    figures.push(...measured.figures);
    processes.push(...measured.processes);
  };

  if (only !== "auth") {
    add(await bareHttp(settings));
    add(await echoCall(settings, infra, { rps: byId("bare.rps"), p99: byId("bare.p99") }));
  }
  if (only !== "reads") add(await hashRates(settings));
  if (only !== "auth") {
    add(
      await profileReads(settings, infra, {
        rps: byId("echo.rps"),
        p99: byId("echo.p99"),
        targetP99: byId("echo.target.p99"),
      }),
    );
    add(await scalingReads(settings, infra, byId("echo.rps")));
  }
  const hashRate = only === "reads" ? undefined : byId(`argon2.argon2-npm.c${SERVICE_HASH_CONCURRENCY}`);
  const auth = hashRate ? await authFlows(settings, infra, hashRate) : undefined;
  if (auth) add(auth);
  if (wsOptions) add(await wsFanout(settings, infra, wsOptions));
  // A few seconds of this runner's own CPU, with no server under load.
  const serializers = only ? undefined : serializerTable(measureSerializers({ ms: 300, rounds: runs + 2 }));
  if (serializers) log(`serializers:\n${serializers}`);

  const order = ["bare.", "echo.", "profile.", "scale.", "argon2.", "register.", "login.", "ws."];
  const rank = (f: Figure) => order.findIndex((prefix) => f.id.startsWith(prefix));
  figures.sort((a, b) => rank(a) - rank(b));

  const profiles = cpuProfDir ? await summarizeAll(cpuProfDir, processes) : undefined;
  const report: Report = {
    generatedAt: new Date().toISOString(),
    command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
    settings: {
      runs,
      durationS,
      warmupS,
      httpConnections: HTTP_CONNECTIONS,
      pipelining: 1,
      authConnections: AUTH_CONNECTIONS,
      pacedShareOfHashRate: PACED_SHARE,
      pacedRate: auth?.pacedRate,
      split: values.split,
      ...(wsOptions ? { ws: wsSettings(wsOptions, settings, { ...WS_BENCH_ENV, ...platformEnv }) } : {}),
      platformEnv,
      argon2: { type: "argon2id", ...OWASP_MIN },
      hashRateBaseline: hashRate?.id,
    },
    machine: machineInfo,
    topology: {
      loadGenerator: {
        pid: process.pid,
        role: "this runner: autocannon (closed loop) and the paced open-loop generator of the auth routes, one event loop; the paced reads (B and the profile reads) come from a generator process of their own, warmed up at their rate first (its CPU and lateness are figures)",
      },
      servers: {
        "nats-server": { pid: servers.nats.pid, url: infra.nats },
        "redis-server": { pid: servers.redis.pid, url: infra.redis },
        "ferretdb (PostgreSQL backend)": { pid: servers.mongo.pid, url: infra.mongo },
        postgres: { pid: servers.mongo.postgres?.pid, url: servers.mongo.postgres?.url ?? "" },
      },
      children: processes,
      note: "All on 127.0.0.1 of this machine: the load generator, the servers under test and NATS, Redis and FerretDB share its cores.",
    },
    figures,
    hashComparison: fasterHash(figures),
    ...(profiles ? { profiles } : {}),
    ...(serializers ? { serializers } : {}),
  };

  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, `${outName}.json`), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(RESULTS, `${outName}.md`), markdown(report));

  process.stdout.write(`\n${textTable(figures)}\n\n`);
  for (const h of report.hashComparison) {
    process.stdout.write(
      `argon2id at ${h.concurrency} in flight: ${h.faster} faster by ${h.by.toFixed(2)}x\n`,
    );
  }
  for (const p of profiles ?? []) process.stdout.write(`\nCPU profile ${p.file}:\n${p.top}\n`);
  process.stdout.write(`\nwritten: bench/results/${outName}.json, bench/results/${outName}.md\n`);
}

/** The profiles the server children of this run wrote (children with a pid are servers). */
async function summarizeAll(dir: string, children: ProcessInfo[]) {
  const written = new Set(await readdir(dir));
  const files = children.filter((c) => c.pid !== undefined).map((c) => `${c.name}.cpuprofile`);
  return Promise.all(
    files
      .filter((file) => written.has(file))
      .map(async (file) => ({
        file: `bench/results/profiles/${file}`,
        top: await summarizeProfile(path.join(dir, file), 20),
      })),
  );
}

let exitCode = 1;
try {
  await main();
  exitCode = 0;
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
log(`done in ${Math.round((Date.now() - begun) / 1000)} s`);
process.exit(exitCode);
