/**
 * Logging never stops the event loop: a process whose stdout pipe is not being read keeps running
 * its timers while it logs megabytes, and every line arrives once the pipe is read again.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const LINES = 20_000;
const destination = fileURLToPath(new URL("../../../lib/log-destination.ts", import.meta.url));

// The child logs LINES lines of ~200 bytes (4 MB, far more than a pipe holds) while a 10 ms timer
// measures how late it runs; it reports on stderr, then waits for its lines to be written.
const child = `
import { logDestination } from ${JSON.stringify(destination)};
const out = logDestination();
let last = Date.now();
let latest = 0;
const tick = setInterval(() => { const now = Date.now(); latest = Math.max(latest, now - last); last = now; }, 10);
let n = 0;
const pad = "x".repeat(180);
const burst = () => {
  for (let i = 0; i < 500 && n < ${LINES}; i++) out.write(JSON.stringify({ n: n++, pad }) + "\\n");
  if (n < ${LINES}) setImmediate(burst);
  else setTimeout(() => {
    clearInterval(tick);
    process.stderr.write(JSON.stringify({ latestTimerMs: latest }) + "\\n");
    out.flush(() => process.exit(0));
  }, 200);
};
burst();
`;

test("a process logs 4 MB to a pipe nobody reads, its timers keep running, and every line arrives", async () => {
  const proc = spawn(process.execPath, ["--input-type=module", "-e", child], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout.pause();
  let stderr = "";
  proc.stderr.setEncoding("utf8");
  const reported = new Promise<{ latestTimerMs: number }>((resolve, reject) => {
    proc.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      const line = stderr.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
    proc.once("exit", () => reject(new Error(`the child exited before it reported: ${stderr}`)));
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error("no report in 20 s: the child is blocked on its stdout")),
      20_000,
    ).unref(),
  );
  try {
    const report = await Promise.race([reported, timeout]);
    assert.ok(
      report.latestTimerMs < 2_000,
      `timers ran while stdout was full: latest ${report.latestTimerMs} ms`,
    );
  } finally {
    proc.stdout.resume();
  }
  let text = "";
  proc.stdout.setEncoding("utf8");
  proc.stdout.on("data", (chunk: string) => {
    text += chunk;
  });
  await once(proc, "close");
  const lines = text.split("\n").filter(Boolean);
  assert.equal(lines.length, LINES, "every line arrived");
  assert.equal(JSON.parse(lines.at(-1) as string).n, LINES - 1);
});
