/**
 * One server process the tests own: started on a fixed port in its own temp dir, restartable on the
 * same port with the same dir, stopped by pid. Every live process is killed when the test process
 * exits, so a failed test never leaves a server behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const STARTUP_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 4_000;

export interface ServerHandle {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** True for a server named by an env var: the tests cannot stop, restart or kill it. */
  readonly external: boolean;
  /** SIGTERM (SIGKILL after 5 s), then removes the temp dir. */
  stop(): Promise<void>;
  /** Stops the process if it runs and starts it again on the same port with the same dir. */
  restart(): Promise<void>;
  /** SIGKILL; the server stays down until restart(). */
  kill(): Promise<void>;
}

export interface ServerSpec {
  /** The binary's name, used in messages. */
  name: string;
  command: string;
  args(port: number, dir: string): string[];
  url(port: number): string;
  /** Resolves once the server on this port answers. */
  probe(port: number): Promise<void>;
  /** Runs once in the fresh dir before the first launch (not before restarts). */
  prepare?(dir: string): Promise<void>;
  /** The user the process runs as (when the tests run as root and the server refuses root). */
  user?: { uid: number; gid: number };
}

const live = new Set<ManagedServer>();

process.on("exit", () => {
  for (const server of live) server.killNow();
});

export class ManagedServer implements ServerHandle {
  readonly external = false;
  readonly url: string;
  readonly port: number;
  readonly #spec: ServerSpec;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #output = "";

  private constructor(spec: ServerSpec, port: number, dir: string) {
    this.#spec = spec;
    this.port = port;
    this.#dir = dir;
    this.url = spec.url(port);
  }

  static async start(spec: ServerSpec, port: number): Promise<ManagedServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `${spec.name}-`));
    const server = new ManagedServer(spec, port, dir);
    live.add(server);
    try {
      if (spec.user) await chown(dir, spec.user.uid, spec.user.gid);
      await spec.prepare?.(dir);
      await server.#launch();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get pid(): number | undefined {
    return this.#running() ? this.#child?.pid : undefined;
  }

  async stop(): Promise<void> {
    await this.#terminate();
    await rm(this.#dir, { recursive: true, force: true });
    live.delete(this);
  }

  async restart(): Promise<void> {
    await this.#terminate();
    live.add(this);
    await this.#launch();
  }

  async kill(): Promise<void> {
    await this.#terminate("SIGKILL");
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    if (this.#running()) this.#signal("SIGKILL");
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #launch(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    this.#output = "";
    const child = spawn(this.#spec.command, this.#spec.args(this.port, this.#dir), {
      cwd: this.#dir,
      stdio: ["ignore", "pipe", "pipe"],
      ...(this.#spec.user ?? {}),
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (err) => {
        this.#record(`${err.message}\n`);
        resolve();
      });
    });
    child.stdout?.on("data", (chunk: Buffer) => this.#record(chunk.toString("utf8")));
    child.stderr?.on("data", (chunk: Buffer) => this.#record(chunk.toString("utf8")));
    // A server a test forgot to stop must not keep the test process alive; the exit hook kills it.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
    await this.#waitUntilReady();
  }

  async #waitUntilReady(): Promise<void> {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!this.#running()) {
        const code = this.#child?.exitCode ?? this.#child?.signalCode;
        throw new Error(`${this.#spec.name} exited (${code}) before accepting connections${this.#tail()}`);
      }
      try {
        await this.#spec.probe(this.port);
        return;
      } catch (err) {
        lastError = err;
      }
      await sleep(100);
    }
    const reason = lastError instanceof Error ? ` (last probe: ${lastError.message})` : "";
    await this.#terminate();
    throw new Error(
      `${this.#spec.name} did not accept connections on 127.0.0.1:${this.port} within ${STARTUP_TIMEOUT_MS / 1000} s${reason}${this.#tail()}`,
    );
  }

  async #terminate(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.#running()) return;
    this.#signal(signal);
    const timer = setTimeout(() => this.#signal("SIGKILL"), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // The process is already gone.
    }
  }

  #running(): boolean {
    const child = this.#child;
    return child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
  }

  #record(text: string): void {
    this.#output = (this.#output + text).slice(-OUTPUT_TAIL_CHARS);
  }

  #tail(): string {
    return this.#output ? `; its output ends with:\n${this.#output}` : "";
  }
}
