/**
 * Real servers for integration and chaos tests: NATS, Redis and FerretDB (MongoDB wire protocol),
 * each on a free port of 127.0.0.1 in a fresh temp dir. NATS_URL, REDIS_URL and MONGO_URL point the
 * tests at external servers instead; such handles have `external: true` and cannot be stopped.
 */
import net from "node:net";
import { findBinary } from "./binaries.ts";
import { installGinTwins, postgresSpec } from "./postgres.ts";
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

/** The MongoDB-wire server of the tests, with the PostgreSQL server it keeps its data in. */
export interface FerretHandle extends ServerHandle {
  /** Stopped with the FerretDB; restart() and kill() act on the FerretDB alone. */
  readonly postgres: ServerHandle | undefined;
}

/**
 * FerretDB 1.24 over a PostgreSQL server of its own (postgres.ts), so data survives a restart of
 * either. Its PostgreSQL backend was chosen over the SQLite one after measuring both here with the
 * platform's operations, 16 in flight, on 2,000-6,000 stored documents: an update by `_id` 400-740
 * a second vs 38-98 (and SQLITE_BUSY errors under concurrent updates), a find by a non-`_id` field
 * 400-900 vs 20-146 (PostgreSQL gets the filter pushed down; SQLite scans the collection), a page of
 * a chat's messages 410-760 vs 11-24; inserts 1,100-2,300 vs 2,200-2,900.
 */
export async function startFerret(): Promise<FerretHandle> {
  if (process.env.MONGO_URL)
    return { ...externalServer("MONGO_URL", process.env.MONGO_URL, 27017), postgres: undefined };
  const postgres = await ManagedServer.start(postgresSpec(), await freePort());
  let ferret: ServerHandle;
  try {
    await installGinTwins(postgres.port);
    ferret = await ManagedServer.start(
      {
        name: "ferretdb",
        command: findBinary("ferretdb"),
        args: (port, dir) => [
          "--handler=pg",
          `--postgresql-url=${postgres.url}`,
          `--listen-addr=127.0.0.1:${port}`,
          `--state-dir=${dir}`,
          "--debug-addr=-",
          "--telemetry=disable",
        ],
        url: (port) => `mongodb://127.0.0.1:${port}`,
        probe: (port) => mongoPing(`mongodb://127.0.0.1:${port}`),
      },
      await freePort(),
    );
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  return {
    url: ferret.url,
    port: ferret.port,
    get pid() {
      return ferret.pid;
    },
    external: false,
    postgres,
    stop: async () => {
      await ferret.stop();
      await postgres.stop();
    },
    restart: () => ferret.restart(),
    kill: () => ferret.kill(),
  };
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
