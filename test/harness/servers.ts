/**
 * Real servers for integration and chaos tests: NATS, Redis and FerretDB (MongoDB wire protocol),
 * each on a free port of 127.0.0.1 in a fresh temp dir. NATS_URL, REDIS_URL and MONGO_URL point the
 * tests at external servers instead; such handles have `external: true` and cannot be stopped.
 */
import net from "node:net";
import { findBinary } from "./binaries.ts";
import { expectLine, mongoPing } from "./probes.ts";
import { ManagedServer, type ServerHandle, type ServerSpec } from "./server-process.ts";

export type { ServerHandle } from "./server-process.ts";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not read the free port"));
      });
    });
  });
}

export function startNats(): Promise<ServerHandle> {
  return startServer("NATS_URL", 4222, {
    name: "nats-server",
    args: (port) => ["-a", "127.0.0.1", "-p", String(port)],
    url: (port) => `nats://127.0.0.1:${port}`,
    probe: (port) => expectLine(port, undefined, (line) => line.startsWith("INFO ")),
  });
}

/** Redis keeps nothing on disk: after a restart it is empty, like a cache that lost its node. */
export function startRedis(): Promise<ServerHandle> {
  return startServer("REDIS_URL", 6379, {
    name: "redis-server",
    args: (port, dir) => [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    url: (port) => `redis://127.0.0.1:${port}`,
    probe: (port) => expectLine(port, "PING\r\n", (line) => line === "+PONG"),
  });
}

/**
 * FerretDB over SQLite files in its dir, so data survives a restart. Its SQLite runs in WAL mode
 * (FerretDB's default) with synchronous=NORMAL instead of SQLite's FULL: a commit is not fsynced
 * on its own, only at checkpoints, so it survives the process being killed but not a power loss,
 * which is what a test server needs. Inserts run 2 to 3 times faster than with FULL here (750 vs
 * 1,640-2,130 a second, 16 in flight), and every write path of the tests runs through them.
 */
export function startFerret(): Promise<ServerHandle> {
  return startServer("MONGO_URL", 27017, {
    name: "ferretdb",
    args: (port, dir) => [
      "--handler=sqlite",
      `--sqlite-url=file:${dir}/?_pragma=synchronous(normal)`,
      `--listen-addr=127.0.0.1:${port}`,
      `--state-dir=${dir}`,
      "--debug-addr=-",
      "--telemetry=disable",
    ],
    url: (port) => `mongodb://127.0.0.1:${port}`,
    probe: (port) => mongoPing(`mongodb://127.0.0.1:${port}`),
  });
}

async function startServer(
  variable: string,
  defaultPort: number,
  spec: Omit<ServerSpec, "command">,
): Promise<ServerHandle> {
  const url = process.env[variable];
  if (url) return externalServer(variable, url, defaultPort);
  return ManagedServer.start({ ...spec, command: findBinary(spec.name) }, await freePort());
}

function externalServer(variable: string, url: string, defaultPort: number): ServerHandle {
  const refuse = () =>
    Promise.reject(
      new Error(
        `${variable} points at an external server (${url}); the tests cannot stop, restart or kill it`,
      ),
    );
  return {
    url,
    port: portOf(url, defaultPort),
    pid: undefined,
    external: true,
    stop: refuse,
    restart: refuse,
    kill: refuse,
  };
}

function portOf(url: string, defaultPort: number): number {
  const first = url.split(",")[0] ?? url;
  try {
    return Number(new URL(first).port) || defaultPort;
  } catch {
    return defaultPort;
  }
}
