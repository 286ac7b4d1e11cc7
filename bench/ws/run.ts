/**
 * `npx node bench/ws/run.ts [options]`: the WebSocket benchmark alone (`npm run bench` runs it too,
 * after the other scenarios). Writes bench/results/ws-<connections>.{json,md}.
 */
import "../guard.ts";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PLATFORM_NODE_FLAGS } from "../../lib/node-flags.ts";
import { type Servers, startServers } from "../../test/support/cluster.ts";
import { stopAll } from "../processes.ts";
import { machine, markdownTable, textTable } from "../report.ts";
import { nodeFlagsOption, postgresTree, type Settings } from "../scenarios.ts";
import type { SocketImpl } from "./clients.ts";
import { DRAIN_MS, describeDrive, MESSAGE_CHARS } from "./drive.ts";
import { WS_DEFAULTS, type WsMeasured, type WsOptions, wsFanout, wsSettings } from "./scenario.ts";
import { BENCH_ENV, TARGETS, type Target } from "./topology.ts";

const USAGE = `usage: npx node bench/ws/run.ts [--connections N] [--rate R] [--runs N] [--duration S]
       [--targets bare,centrifugo,embedded,cluster,cluster2,cluster-ha] [--no-saturation] [--overload R] [--concurrency C]
       [--impl ws|undici] [--cpu-prof] [--node-flags=FLAGS]
       [--env NAME=VALUE ...]
  --connections N   sockets (users) per target (default ${WS_DEFAULTS.connections}); groups of 10
  --rate R          messages/s of the measured runs (default ${WS_DEFAULTS.rate})
  --runs N          measured runs per figure (default 3), --duration S seconds each (default 10)
  --targets LIST    which of ${TARGETS.join(", ")} (default all; bare is the baseline;
                    centrifugo is Centrifugo v6, installed by scripts/install-test-servers.sh;
                    cluster2 is the cluster scaled out to two gateways and two chat nodes; cluster-ha
                    the cluster on a NATS cluster and a Redis Cluster)
  --no-saturation   skip the saturation search
  --overload R      one run at R messages/s before the measured runs, which then show the recovery
  --concurrency C   upgrades in flight while connecting (default ${WS_DEFAULTS.connectConcurrency})
  --impl ws|undici  WebSocket implementation under ChatSocket (default ${WS_DEFAULTS.impl}; Centrifugo's
                    clients are on ws)
  --cpu-prof        the server children write V8 CPU profiles to bench/results/profiles/ws-<target>-*.cpuprofile
                    (summarize one with \`npx node bench/profile-summary.ts FILE\`); profiling slows them down
  --env NAME=VALUE  a setting of the platform nodes, over the bench's own; repeatable
  --node-flags=F    the platform processes' Node flags, space-separated, instead of lib/node-flags.ts's
                    (${PLATFORM_NODE_FLAGS.join(" ")}); "" for none`;

const RESULTS = fileURLToPath(new URL("../results/", import.meta.url));
const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv,
  options: {
    connections: { type: "string" },
    rate: { type: "string" },
    runs: { type: "string" },
    duration: { type: "string" },
    targets: { type: "string" },
    "no-saturation": { type: "boolean", default: false },
    overload: { type: "string" },
    concurrency: { type: "string" },
    impl: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    "node-flags": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${value}`);
  return n;
}

const targets = (values.targets?.split(",") ?? WS_DEFAULTS.targets) as Target[];
for (const t of targets)
  if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target ${t}`);
const impl = (values.impl ?? WS_DEFAULTS.impl) as SocketImpl;
if (impl !== "ws" && impl !== "undici") throw new Error(`--impl is ws or undici, not ${impl}`);
const options: WsOptions = {
  connections: positive(values.connections, WS_DEFAULTS.connections, "connections"),
  rate: positive(values.rate, WS_DEFAULTS.rate, "rate"),
  connectConcurrency: positive(values.concurrency, WS_DEFAULTS.connectConcurrency, "concurrency"),
  impl,
  targets,
  saturation: !values["no-saturation"],
  overloadRate: values.overload === undefined ? undefined : positive(values.overload, 0, "overload"),
};
const runs = positive(values.runs, 3, "runs");
const durationS = positive(values.duration, 10, "duration");
const platformEnv = Object.fromEntries(
  (values.env ?? []).map((pair) => {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!match) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
    return [match[1] as string, match[2] as string];
  }),
);

const begun = Date.now();
const log = (message: string) => {
  const s = Math.round((Date.now() - begun) / 1000);
  process.stderr.write(
    `[bench ws ${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}] ${message}\n`,
  );
};
const settings: Settings = {
  runs,
  durationS,
  warmupS: Math.min(3, durationS),
  cpuProfDir: values["cpu-prof"] ? path.join(RESULTS, "profiles") : undefined,
  split: false,
  platformEnv,
  platformNodeFlags: nodeFlagsOption(values["node-flags"]),
  infraPids: {},
  log,
};

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

function details(measured: WsMeasured): string[] {
  const lines: string[] = [];
  for (const r of measured.results) {
    lines.push(
      "",
      `### ${r.target}`,
      "",
      `- ${r.connected} of ${r.connections} sockets ready in ${r.connectSeconds.toFixed(1)} s (${r.connectFailed} failed${r.connectFirstError ? `: ${r.connectFirstError}` : ""}); seeding took ${r.seedSeconds.toFixed(1)} s`,
      `- setup p50 ${r.setup.p50.toFixed(2)} ms, p99 ${r.setup.p99.toFixed(2)} ms, max ${r.setup.max.toFixed(1)} ms`,
      `- memory of pid under test: RSS ${(r.memory.before.rssBytes / 2 ** 20).toFixed(1)} -> ${(r.memory.after.rssBytes / 2 ** 20).toFixed(1)} MiB, ${Number.isNaN(r.memory.before.heapUsedBytes) ? "heap not read" : `heap+external ${((r.memory.before.heapUsedBytes + r.memory.before.externalBytes) / 2 ** 20).toFixed(1)} -> ${((r.memory.after.heapUsedBytes + r.memory.after.externalBytes) / 2 ** 20).toFixed(1)} MiB`}`,
      `- sockets closed during the runs (then reconnected): ${r.closesDuringRuns}`,
      ...(r.overload ? [`- overload run before the others: ${describeDrive(r.overload)}`] : []),
      ...r.runs.map((x, i) => `- run ${i + 1}: ${describeDrive(x)}`),
    );
    if (r.saturation) {
      lines.push(
        `- saturation rate ${r.saturation.rate}/s${r.saturation.rate === r.saturation.probedRate ? "" : ` (probes found ${r.saturation.probedRate}/s; its longer runs did not keep up)`}; probes of ${r.saturation.probeS} s:`,
        ...r.saturation.probes.map((p) => `  - ${describeDrive(p)}`),
        ...r.saturation.runs.map((x, i) => `- at saturation, run ${i + 1}: ${describeDrive(x)}`),
      );
    }
  }
  return lines;
}

async function main(): Promise<void> {
  const m = machine();
  if (settings.cpuProfDir) await mkdir(settings.cpuProfDir, { recursive: true });
  log(`${runs} run(s) of ${durationS} s; ${options.connections} connections; targets ${targets.join(", ")}`);
  for (const variable of ["NATS_URL", "REDIS_URL", "MONGO_URL"]) delete process.env[variable];
  let infra = { nats: "", redis: "", mongo: "" };
  if (targets.some((t) => t.startsWith("cluster"))) {
    servers = await startServers();
    infra = { nats: servers.nats.url, redis: servers.redis.url, mongo: servers.mongo.url };
    settings.infraPids = {
      "nats-server": servers.nats.pid,
      "redis-server": servers.redis.pid,
      ferretdb: servers.mongo.pid,
      postgres: postgresTree(servers),
    };
  }
  const measured = await wsFanout(settings, infra, options);
  const command = `npx node bench/ws/run.ts${argv.length ? ` ${argv.join(" ")}` : ""}`;
  const report = {
    generatedAt: new Date().toISOString(),
    command,
    settings: wsSettings(options, settings, { ...BENCH_ENV, ...platformEnv }),
    machine: m,
    figures: measured.figures,
    results: measured.results,
    processes: measured.processes,
  };
  const name = `ws-${options.connections}`;
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const md = [
    "# WebSocket benchmark",
    "",
    `Generated ${report.generatedAt} by \`${command}\`.`,
    "",
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(" / ")}.`,
    "",
    `Settings: ${Object.entries(report.settings)
      .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
      .join(", ")}.`,
    "",
    markdownTable(measured.figures),
    "",
    "## Runs",
    ...details(measured),
    "",
    `Messages are ${MESSAGE_CHARS} characters; a run waits up to ${DRAIN_MS / 1000} s after its last send for acks and deliveries.`,
  ];
  await writeFile(path.join(RESULTS, `${name}.md`), `${md.join("\n")}\n`);
  process.stdout.write(
    `\n${textTable(measured.figures)}\n\nwritten: bench/results/${name}.json, bench/results/${name}.md\n`,
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
}
log(`done in ${Math.round((Date.now() - begun) / 1000)} s`);
process.exit(exitCode);
