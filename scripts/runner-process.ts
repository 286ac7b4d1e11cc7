/**
 * One moleculer-runner process of a local cluster: started in a process group of its own (so a
 * Ctrl-C in the terminal reaches the cluster script, which stops nodes in order), with its output
 * written to a log file, stopped by pid with SIGTERM and, after a grace period, SIGKILL of its group
 * (the runner's forked workers included).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { PLATFORM_NODE_FLAGS } from "../lib/node-flags.ts";
import { type RunnerSpec, SERVICE_FILES } from "./cluster-options.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
const STOP_GRACE_MS = 15_000;
const TAIL_LINES = 40;

const live = new Set<RunnerProcess>();
// The cluster script dying for any reason leaves no node behind.
process.on("exit", () => {
  for (const runner of live) runner.killGroup("SIGKILL");
});

export class RunnerProcess {
  readonly spec: RunnerSpec;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the runner has exited. */
  readonly exited: Promise<number | string>;
  #child: ChildProcess;
  #log: WriteStream;
  #tail: string[] = [];
  #stopping = false;

  private constructor(spec: RunnerSpec, env: Record<string, string>, logDir: string) {
    this.spec = spec;
    this.logFile = path.join(logDir, `${spec.id}.log`);
    this.#log = createWriteStream(this.logFile, { flags: "a" });
    const args = [...PLATFORM_NODE_FLAGS, RUNNER, "--config", "broker.config.ts"];
    if (spec.instances > 1) args.push("--instances", String(spec.instances));
    this.#child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: {
        ...process.env,
        ...env,
        NODE_ID: spec.id,
        // moleculer-runner loads the files listed here (paths: its shorthand names assume .js).
        SERVICES: spec.services.map((s) => SERVICE_FILES[s]).join(","),
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => {
        live.delete(this);
        this.#log.end();
        resolve(code ?? signal ?? "unknown");
      });
      this.#child.once("error", (err) => {
        this.#record(`${err.message}\n`);
        live.delete(this);
        resolve("spawn error");
      });
    });
    this.#child.stdout?.on("data", (chunk: Buffer) => this.#record(chunk.toString("utf8")));
    this.#child.stderr?.on("data", (chunk: Buffer) => this.#record(chunk.toString("utf8")));
  }

  static start(spec: RunnerSpec, env: Record<string, string>, logDir: string): RunnerProcess {
    return new RunnerProcess(spec, env, logDir);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null && this.#child.pid !== undefined;
  }

  /** True once stop() was called: an exit after that is expected. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** The node ids the runner's brokers take on the bus. */
  get nodeIds(): string[] {
    const { id, instances } = this.spec;
    return instances > 1 ? Array.from({ length: instances }, (_, i) => `${id}-${i + 1}`) : [id];
  }

  /** The last lines the process wrote. */
  tail(): string {
    return this.#tail.join("\n");
  }

  /**
   * SIGTERM to the runner, which forwards it to its workers; the runner may exit before they have
   * finished stopping, so this waits for the whole group, and SIGKILLs it after the grace period.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.running) this.#signal("SIGTERM");
    const deadline = Date.now() + STOP_GRACE_MS;
    while (this.#groupAlive() && Date.now() < deadline) await sleep(100);
    this.killGroup("SIGKILL");
    await this.exited;
  }

  /** Signals the runner's process group: the runner and the workers it forked. */
  killGroup(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone.
    }
  }

  #groupAlive(): boolean {
    const pid = this.#child.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }

  #record(text: string): void {
    this.#log.write(text);
    for (const line of text.split("\n")) {
      if (line) this.#tail.push(line.slice(0, 400));
    }
    if (this.#tail.length > TAIL_LINES) this.#tail.splice(0, this.#tail.length - TAIL_LINES);
  }
}
