/**
 * The runner's children: each is forked with the current Node binary, the loopback guard preloaded,
 * stdout scanned for its one `{"bench":...}` line, and stopped by pid; or, for a server that is
 * not Node (spawnServer: Centrifugo), spawned from its binary and ready when its probe answers. Every child still alive is
 * stopped by stopAll() (the runner calls it in `finally`, on signals and on its watchdog) and
 * SIGKILLed synchronously if the runner exits anyway.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const GUARD = new URL("./guard.ts", import.meta.url).href;
const STOP_GRACE_MS = 20_000;
const KILL_GRACE_MS = 5_000;
const TAIL_CHARS = 4_000;

export interface BenchChild {
  readonly name: string;
  readonly pid: number;
  /** The fields of the child's `{"bench":...}` line. */
  readonly data: Record<string, unknown>;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

/** Every child not yet exited, with its stop(). */
const live = new Map<ChildProcess, () => Promise<void>>();

process.on("exit", () => {
  for (const child of live.keys()) signal(child, "SIGKILL");
});

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, sig);
  } catch {
    // Already gone.
  }
}

export interface ChildOptions {
  /** Extra Node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Time allowed until the child's `{"bench":...}` line. */
  timeoutMs: number;
}

/** Forks `script` (relative to bench/) with one JSON argument and waits for its bench line. */
export async function startChild(
  name: string,
  script: string,
  arg: unknown,
  options: ChildOptions,
): Promise<BenchChild> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const child = fork(path, [JSON.stringify(arg ?? {})], {
    execArgv: ["--import", GUARD, ...(options.nodeFlags ?? [])],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let output = "";
  const record = (text: string) => {
    output = (output + text).slice(-TAIL_CHARS);
  };
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      live.delete(child);
      resolve();
    });
  });
  const line = new Promise<Record<string, unknown>>((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      record(text);
      buffer += text;
      let end = buffer.indexOf("\n");
      while (end !== -1) {
        const parsed = benchLine(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
        if (parsed) resolve(parsed);
        end = buffer.indexOf("\n");
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => record(chunk.toString("utf8")));
    child.once("error", reject);
    void exited.then(() =>
      reject(
        new Error(
          `${name} exited (${child.exitCode ?? child.signalCode}) before it was ready${tail(output)}`,
        ),
      ),
    );
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send("stop");
    else signal(child, "SIGTERM");
    if (await settles(exited, STOP_GRACE_MS)) return;
    signal(child, "SIGTERM");
    if (await settles(exited, KILL_GRACE_MS)) return;
    signal(child, "SIGKILL");
    await exited;
  };
  live.set(child, stop);
  const timer = sleep(options.timeoutMs, undefined, { ref: false }).then(() => {
    throw new Error(`${name} was not ready within ${options.timeoutMs / 1000} s${tail(output)}`);
  });
  try {
    const data = await Promise.race([line, timer]);
    return { name, pid: child.pid as number, data, exited, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Spawns a server binary (not Node: no guard, no IPC), ready once `probe` answers true; stopped
 * by pid with SIGTERM, then SIGKILL. Its output is kept only to explain a failed start.
 */
export async function spawnServer(
  name: string,
  command: string,
  args: string[],
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<BenchChild> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const record = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-TAIL_CHARS);
  };
  child.stdout?.on("data", record);
  child.stderr?.on("data", record);
  let failed: Error | undefined;
  child.once("error", (err) => {
    failed = err;
  });
  const exited = new Promise<void>((resolve) => {
    child.once("close", () => {
      live.delete(child);
      resolve();
    });
  });
  const stop = async () => {
    signal(child, "SIGTERM");
    if (await settles(exited, STOP_GRACE_MS)) return;
    signal(child, "SIGKILL");
    await exited;
  };
  live.set(child, stop);
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    const gone = failed ?? (child.exitCode !== null || child.signalCode !== null);
    if (gone || Date.now() > deadline) {
      await stop();
      const why = failed
        ? failed.message
        : gone
          ? `exited (${child.exitCode ?? child.signalCode})`
          : "timed out";
      throw new Error(`${name} was not ready: ${why}${tail(output)}`);
    }
    await sleep(50);
  }
  return { name, pid: child.pid as number, data: {}, exited, stop };
}

/** Runs a measuring child to its end and answers its `{"bench":"result",...}` fields. */
export async function runChild(name: string, script: string, arg: unknown, timeoutMs: number) {
  const started = Date.now();
  const child = await startChild(name, script, arg, { timeoutMs });
  if (!(await settles(child.exited, Math.max(1_000, timeoutMs - (Date.now() - started))))) {
    await child.stop();
    throw new Error(`${name} did not exit after reporting`);
  }
  return child.data;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((stop) => stop()));
}

function benchLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{"bench":')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function settles(promise: Promise<void>, ms: number): Promise<boolean> {
  const timeout = sleep(ms, false, { ref: false });
  return Promise.race([promise.then(() => true), timeout]);
}

function tail(output: string): string {
  return output ? `; its output ends with:\n${output}` : "";
}
