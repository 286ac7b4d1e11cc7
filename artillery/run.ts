/**
 * `npm run test:load`: starts a local cluster (scripts/cluster.ts: two gateway workers on one port,
 * two of each service), runs the Artillery scenarios against it one after the other, stops the
 * cluster and exits non-zero when any scenario's `ensure` check failed or a node died.
 *
 *   node artillery/run.ts [--env ci|full] [--only auth-register,chat] [--target URL]
 *
 * `--env ci` (the default) runs the short profiles, each under a minute; `--target` runs against a
 * platform that is already up instead of starting a cluster. Artillery runs on this Node (24), so
 * the processors load the TypeScript client as it is. Reports: .tmp/load/<scenario>.json; node logs:
 * .tmp/load/logs/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type Cluster, startCluster } from "../scripts/cluster.ts";
import { parseClusterOptions } from "../scripts/cluster-options.ts";
import { ROOT } from "../scripts/runner-process.ts";

const SCENARIOS = ["auth-register", "auth-login", "profile", "chat"] as const;
const ARTILLERY = path.join(ROOT, "artillery/node_modules/artillery/bin/run");
const OUT = path.join(ROOT, ".tmp/load");
const ARTILLERY_ENV = { ARTILLERY_DISABLE_TELEMETRY: "1", PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1" };

const { values } = parseArgs({
  options: {
    env: { type: "string", default: "ci" },
    only: { type: "string" },
    target: { type: "string" },
  },
});
const environment = values.env;
if (environment !== "ci" && environment !== "full") throw new Error("--env is ci or full");
const chosen = values.only ? values.only.split(",").map((s) => s.trim()) : [...SCENARIOS];
for (const name of chosen) {
  if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario ${name}`);
}

const log = (line: string) => process.stdout.write(`[load] ${line}\n`);
let cluster: Cluster | undefined;
let child: ChildProcess | undefined;
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = true;
    log(`${signal}: stopping`);
    child?.kill("SIGINT");
  });
}

const started = Date.now();
const results: { name: string; code: number | string; seconds: number; load: string }[] = [];
try {
  await ensureInstalled();
  await mkdir(path.join(OUT, "logs"), { recursive: true });
  let target = values.target;
  if (!target) {
    const options = parseClusterOptions(["--port", "0", "--load", "--log-dir", path.join(OUT, "logs")], {});
    if (options === "help") throw new Error("unreachable");
    cluster = await startCluster(options, (line) => log(line));
    target = cluster.url;
    log(`cluster ready at ${target} after ${seconds(started)} s`);
  }
  for (const name of chosen) {
    if (interrupted) break;
    const t0 = Date.now();
    const code = await runArtillery(name, target);
    // The 1-minute load average at the end: figures taken while other work shared the cores say so.
    results.push({ name, code, seconds: Number(seconds(t0)), load: os.loadavg()[0]?.toFixed(1) ?? "?" });
    log(`${name}: ${code === 0 ? "passed" : `FAILED (${code})`} in ${seconds(t0)} s`);
  }
} finally {
  if (cluster) {
    await cluster.stop();
    for (const failure of cluster.failures) log(`node died during the run: ${failure}`);
  }
}

for (const r of results) {
  const figures = await summary(r.name).catch((err: Error) => `no report (${err.message})`);
  const verdict = r.code === 0 ? "passed" : "FAILED";
  log(`${r.name} (${environment}, ${r.seconds} s, load average ${r.load}, ${verdict}): ${figures}`);
}
const failed = results.filter((r) => r.code !== 0).length + (cluster?.failures.length ?? 0);
log(`total ${seconds(started)} s; ${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 || interrupted || results.length < chosen.length ? 1 : 0);

async function ensureInstalled(): Promise<void> {
  if (existsSync(ARTILLERY)) return;
  log("installing Artillery (npm --prefix artillery ci)");
  const t0 = Date.now();
  const code = await run("npm", ["--prefix", "artillery", "ci", "--no-audit", "--no-fund"]);
  if (code !== 0) throw new Error(`npm --prefix artillery ci exited with ${code}`);
  log(`installed in ${seconds(t0)} s`);
}

function runArtillery(name: string, target: string): Promise<number | string> {
  const args = [ARTILLERY, "run", "-e", environment as string, "--target", target];
  args.push("--output", path.join(OUT, `${name}.json`), path.join(ROOT, "artillery", `${name}.yml`));
  log(`${name}: artillery run -e ${environment} --target ${target}`);
  return run(process.execPath, args);
}

function run(command: string, args: string[]): Promise<number | string> {
  return new Promise((resolve) => {
    child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...ARTILLERY_ENV }, stdio: "inherit" });
    child.once("error", (err) => resolve(err.message));
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
}

/** The figures of one report that say how the run went. */
async function summary(name: string): Promise<string> {
  const report = JSON.parse(await readFile(path.join(OUT, `${name}.json`), "utf8")) as {
    aggregate: {
      counters: Record<string, number>;
      rates: Record<string, number>;
      summaries: Record<string, Record<string, number>>;
    };
  };
  const { counters, rates, summaries } = report.aggregate;
  const parts: string[] = [];
  const latency = (metric: string, label: string) => {
    const s = summaries[metric];
    if (s) parts.push(`${label} p50 ${s.median} ms, p95 ${s.p95} ms, p99 ${s.p99} ms`);
  };
  parts.push(`vusers ${counters["vusers.created"] ?? 0} created, ${counters["vusers.failed"] ?? 0} failed`);
  if (counters["http.requests"]) {
    parts.push(`${counters["http.requests"]} requests (${rates["http.request_rate"] ?? "?"}/s)`);
    const codes = Object.entries(counters)
      .filter(([k]) => k.startsWith("http.codes."))
      .map(([k, v]) => `${k.slice(11)}: ${v}`);
    parts.push(`codes ${codes.join(", ")}`);
    latency("http.response_time", "response");
  }
  for (const key of ["chat.sent", "chat.delivered", "chat.lost", "chat.resumed", "chat.unexpected"]) {
    if (key in counters) parts.push(`${key.slice(5)} ${counters[key]}`);
  }
  latency("chat.ack_ms", "ack");
  latency("chat.delivery_ms", "delivery");
  latency("chat.connect_ms", "connect");
  latency("chat.resume_ms", "resume");
  const errors = Object.entries(counters).filter(([k]) => k.startsWith("errors."));
  if (errors.length) parts.push(`errors ${errors.map(([k, v]) => `${k.slice(7)}: ${v}`).join(", ")}`);
  return parts.join("; ");
}

function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}
