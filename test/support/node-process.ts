/**
 * A platform node in a process of its own, started by moleculer-runner exactly as operators start
 * one (with lib/node-flags.ts's Node flags), so chaos tests can kill it with SIGKILL and start it
 * again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PLATFORM_NODE_FLAGS } from "../../lib/node-flags.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
const SERVICE_FILES: Record<string, string> = {
  auth: "services/auth/auth.service.ts",
  profile: "services/profile/profile.service.ts",
  chat: "services/chat/chat.service.ts",
  gateway: "gateway/gateway.service.ts",
};
const STARTED = /ServiceBroker with \d+ service\(s\) started successfully/;
const RUNNING = new Set<ChildProcess>();
// A test process that dies leaves no node behind, whether it exits or is stopped by a signal
// (a signal ends the process without "exit" handlers unless it is handled).
const killAll = () => {
  for (const child of RUNNING) child.kill("SIGKILL");
};
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  });
}

export class NodeProcess {
  readonly nodeId: string;
  private readonly services: string[];
  private readonly env: Record<string, string>;
  private child: ChildProcess | undefined;
  private tail: string[] = [];

  constructor(nodeId: string, services: string[], env: Record<string, string>) {
    this.nodeId = nodeId;
    this.services = services;
    this.env = env;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the node and resolves once its broker says every service started. */
  start(timeoutMs = 60_000): Promise<void> {
    const files = this.services.map((s) => SERVICE_FILES[s] as string);
    const child = spawn(
      process.execPath,
      [...PLATFORM_NODE_FLAGS, RUNNER, "--config", "broker.config.ts", ...files],
      {
        cwd: ROOT,
        env: { ...process.env, ...this.env, NODE_ID: this.nodeId, LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child = child;
    this.tail = [];
    RUNNING.add(child);
    child.once("exit", () => RUNNING.delete(child));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.nodeId} did not start: ${this.tail.join("\n")}`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (!line) continue;
          this.tail = [...this.tail.slice(-30), line.slice(0, 500)];
          if (STARTED.test(line)) {
            clearTimeout(timer);
            resolve();
          }
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(`${this.nodeId} exited (${code ?? signal}) while starting: ${this.tail.join("\n")}`),
        );
      });
    });
  }

  /** Kills the process with the given signal and resolves once it has exited. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const hard = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(hard);
  }

  stop(): Promise<void> {
    return this.kill("SIGTERM");
  }
}
