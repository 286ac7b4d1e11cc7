/**
 * Fuzzes the REST contract with Schemathesis: starts the embedded platform in this process (a temp
 * DATA_DIR, a free port on 127.0.0.1), registers a user whose login gives the bearer token
 * (scripts/schemathesis.toml logs in again after a 401), and runs
 * `schemathesis run BASE/openapi.json --checks all` over every phase (examples, coverage,
 * fuzzing, and the stateful one that chains operations through the document's `links`), with a
 * bounded number of examples and time. Exits non-zero on any failure Schemathesis reports.
 *
 *   npm run test:fuzz                      # what .ci/run runs
 *   npm run test:fuzz -- --max-examples 50 --max-time 600 --seed 1
 *
 * Schemathesis comes from scripts/install-test-servers.sh (its own venv, SCHEMATHESIS_BIN to use
 * another). It talks only to the platform on 127.0.0.1; version 4 sends no telemetry, and the
 * SCHEMATHESIS_TELEMETRY=false set below only keeps it that way should a later release add some.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { newUser, startEmbedded } from "../test/support/platform.ts";

const SCHEMATHESIS = process.env.SCHEMATHESIS_BIN ?? "/opt/schemathesis/bin/schemathesis";
const CONFIG = path.join(path.dirname(fileURLToPath(import.meta.url)), "schemathesis.toml");

const { values } = parseArgs({
  options: {
    "max-examples": { type: "string", default: "15" },
    "max-time": { type: "string", default: "150" },
    seed: { type: "string" },
  },
});

async function main(): Promise<number> {
  if (!existsSync(SCHEMATHESIS)) {
    process.stderr.write(`${SCHEMATHESIS} is missing: install it with scripts/install-test-servers.sh\n`);
    return 1;
  }
  // Limits out of the fuzzer's way: rate limits are tested elsewhere, and a 429 would only hide
  // the operation behind it.
  const platform = await startEmbedded({
    LOG_LEVEL: "error",
    RATE_LIMIT_MAIL_ADDRESS: "1000000/60",
    RATE_LIMIT_MAIL_IP: "1000000/60",
    RATE_LIMIT_TOKEN_IP: "1000000/60",
    RATE_LIMIT_EXPORT_USER: "1000000/60",
  });
  try {
    const user = newUser("fuzz");
    await register(platform.url, user);
    const args = [
      "--config-file",
      CONFIG,
      "run",
      `${platform.url}/openapi.json`,
      "--checks",
      "all",
      "--phases",
      "examples,coverage,fuzzing,stateful",
      "--max-examples",
      String(values["max-examples"]),
      "--max-time",
      String(values["max-time"]),
      "--request-timeout",
      "15",
      // One worker: hypothesis parses its own source with `ast` from several threads otherwise,
      // which CPython 3.11 does not always survive ("AST constructor recursion depth mismatch").
      "--workers",
      "1",
      "--generation-database",
      "none",
      "--no-color",
      ...(values.seed ? ["--seed", values.seed] : []),
    ];
    process.stdout.write(`schemathesis ${args.join(" ")}\n`);
    return await run(SCHEMATHESIS, args, { FUZZ_USERNAME: user.username, FUZZ_PASSWORD: user.password });
  } finally {
    await platform.stop();
  }
}

async function register(url: string, user: ReturnType<typeof newUser>): Promise<void> {
  const res = await fetch(`${url}/auth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(user),
  });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
}

/** Runs Schemathesis in a temp folder, which keeps its cache (`.schemathesis/`) out of the repository. */
function run(cmd: string, args: string[], env: Record<string, string>): Promise<number> {
  const cwd = mkdtempSync(path.join(os.tmpdir(), "fuzz-api-"));
  return new Promise<number>((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, ...env, SCHEMATHESIS_TELEMETRY: "false", NO_COLOR: "1" },
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  }).finally(() => rmSync(cwd, { recursive: true, force: true }));
}

process.exitCode = await main();
