/**
 * The MongoDB driver's hang on a destroyed socket (lib/store/mongo-closed-socket.ts), shown on the
 * driver as installed and ended by the fix. A driver connection is made on a plain TCP socket to a
 * local server that reads nothing and answers nothing; the socket is destroyed in the same turn
 * of the event loop as the command starts, which is what a server that goes away does to a
 * connection between its destruction and its 'close' event. This file does not load the store,
 * so the driver starts unfixed; each test file runs in a process of its own.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { createRequire } from "node:module";
import net from "node:net";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { MongoNetworkError } from "mongodb";
import { fixClosedSocketWrites } from "../../../../lib/store/mongo-closed-socket.ts";

const require = createRequire(import.meta.url);
const { makeConnection } = require("mongodb/lib/cmap/connect.js") as {
  makeConnection(options: Record<string, unknown>, socket: net.Socket): DriverConnection;
};
const { ns } = require("mongodb/lib/utils.js") as { ns(name: string): unknown };

interface DriverConnection {
  readonly closed: boolean;
  command(
    namespace: unknown,
    cmd: Record<string, unknown>,
    options: Record<string, unknown>,
  ): Promise<unknown>;
}

let server: net.Server;
let port = 0;
const received: Buffer[] = [];

before(async () => {
  server = net.createServer((s) => {
    s.on("data", (chunk) => received.push(chunk));
    s.on("error", () => undefined);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as net.AddressInfo).port;
});

after(() => {
  server.close();
});

async function connection(): Promise<{ conn: DriverConnection; socket: net.Socket }> {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  const conn = makeConnection(
    { id: 1, generation: 0, hostAddress: { toString: () => `127.0.0.1:${port}` }, socketTimeoutMS: 1_000 },
    socket,
  );
  return { conn, socket };
}

/** How a command ends, once its socket's 'close' event and what follows it have all run. */
async function outcomeAfterClose(
  command: Promise<unknown>,
  socket: net.Socket,
): Promise<{ settled: "pending" | "resolved" | "rejected"; error?: unknown }> {
  const outcome: { settled: "pending" | "resolved" | "rejected"; error?: unknown } = { settled: "pending" };
  command.then(
    () => {
      outcome.settled = "resolved";
    },
    (error: unknown) => {
      outcome.settled = "rejected";
      outcome.error = error;
    },
  );
  if (!socket.closed) await once(socket, "close");
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return outcome;
}

test("unfixed, the driver's command on a socket destroyed before its 'close' never settles", async () => {
  const { conn, socket } = await connection();
  socket.destroy();
  assert.equal(conn.closed, false, "the connection does not know yet");
  const outcome = await outcomeAfterClose(conn.command(ns("admin.$cmd"), { ping: 1 }, {}), socket);
  // If this fails, the installed driver no longer hangs here: the fix may be retired.
  assert.equal(outcome.settled, "pending", "the command waits for a 'drain' that never comes");
});

test("with the fix, that command fails with a network error and the connection is closed", async () => {
  assert.equal(fixClosedSocketWrites(), true, "the driver still has the method the fix wraps");
  assert.equal(fixClosedSocketWrites(), true, "applying it twice is harmless");
  const { conn, socket } = await connection();
  socket.destroy();
  const command = conn.command(ns("admin.$cmd"), { ping: 1 }, {});
  const first = await Promise.race([
    command.then(
      () => "resolved",
      (error: unknown) => error,
    ),
    once(socket, "close").then(() => "the socket's close came first"),
  ]);
  assert.ok(
    first instanceof MongoNetworkError,
    `a MongoNetworkError before the close event, got ${String(first)}`,
  );
  assert.match(first.message, /closed/);
  assert.equal(conn.closed, true);
});

test("with the fix, a command whose socket is destroyed while it is being compressed fails too", async () => {
  const { conn, socket } = await connection();
  // As negotiated with a server that compresses: serialising the command then takes zlib's time.
  Object.assign((conn as unknown as { description: object }).description, {
    compressor: "zlib",
    zlibCompressionLevel: 6,
  });
  const command = conn.command(ns("admin.$cmd"), { ping: 1, pad: "y".repeat(100_000) }, {});
  socket.destroy();
  const outcome = await outcomeAfterClose(command, socket);
  assert.equal(outcome.settled, "rejected");
  assert.ok(outcome.error instanceof MongoNetworkError, `a MongoNetworkError, got ${String(outcome.error)}`);
});

test("with the fix, a command on a live socket is written, and fails as before when the socket goes", async () => {
  const { conn, socket } = await connection();
  const before = received.length;
  const command = conn.command(ns("admin.$cmd"), { ping: 1, pad: "x".repeat(200_000) }, {});
  // The server got the command's bytes (it never answers, so the command waits for a reply).
  while (received.slice(before).reduce((n, b) => n + b.length, 0) < 200_000)
    await new Promise((resolve) => setImmediate(resolve));
  socket.destroy();
  const outcome = await outcomeAfterClose(command, socket);
  assert.equal(outcome.settled, "rejected");
  assert.ok(outcome.error instanceof MongoNetworkError);
});

test("loading the MongoDB store applies the fix", async () => {
  // In a fresh process, where nothing has applied it yet.
  const store = new URL("../../../../lib/store/mongo.ts", import.meta.url).href;
  const fix = new URL("../../../../lib/store/mongo-closed-socket.ts", import.meta.url).href;
  const script = [
    `const { isFixApplied } = await import(${JSON.stringify(fix)});`,
    "const before = isFixApplied();",
    `await import(${JSON.stringify(store)});`,
    "console.log(JSON.stringify({ before, after: isFixApplied() }));",
  ].join("\n");
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script]);
  assert.deepEqual(JSON.parse(stdout), { before: false, after: true });
});
