/** Each test server starts, answers, restarts on the same port, and is gone once stopped. */
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { Redis } from "ioredis";
import { MongoClient } from "mongodb";
import { connect } from "nats";
import { psql } from "./postgres.ts";
import { type ServerHandle, startFerret, startNats, startRedis } from "./servers.ts";

async function natsAnswers(url: string): Promise<void> {
  const connection = await connect({ servers: url, reconnect: false, timeout: 5_000 });
  await connection.flush();
  await connection.close();
}

async function redisAnswers(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    assert.equal(await redis.ping(), "PONG");
  } finally {
    redis.disconnect();
  }
}

async function mongoAnswers(url: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  try {
    assert.equal((await client.db("admin").command({ ping: 1 })).ok, 1);
  } finally {
    await client.close();
  }
}

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

async function checkLifecycle(server: ServerHandle, answers: (url: string) => Promise<void>): Promise<void> {
  try {
    await answers(server.url);
    if (server.external) return;
    const { port, pid } = server;
    assert.ok(pid);
    await server.restart();
    assert.equal(server.port, port);
    assert.notEqual(server.pid, pid);
    await answers(server.url);
    await server.kill();
    assert.ok(await portIsClosed(port));
    await server.restart();
    await answers(server.url);
  } finally {
    if (!server.external) await server.stop();
  }
  if (!server.external) assert.ok(await portIsClosed(server.port));
}

test("nats-server starts, restarts on the same port and stops", async () => {
  await checkLifecycle(await startNats(), natsAnswers);
});

test("redis-server starts, restarts on the same port and stops", async () => {
  await checkLifecycle(await startRedis(), redisAnswers);
});

test("ferretdb starts, restarts on the same port and stops", async () => {
  await checkLifecycle(await startFerret(), mongoAnswers);
});

test("ferretdb keeps its data across a restart", async () => {
  const server = await startFerret();
  if (server.external) return;
  try {
    const client = new MongoClient(`${server.url}/harness`, { serverSelectionTimeoutMS: 5_000 });
    const kept = client.db().collection<{ _id: string }>("kept");
    await kept.insertOne({ _id: "x" });
    await server.restart();
    assert.deepEqual(await kept.findOne({ _id: "x" }), { _id: "x" });
    await client.close();
  } finally {
    await server.stop();
  }
});

test("every index FerretDB creates in PostgreSQL gets a GIN twin that its `@>` filters can use", async () => {
  const server = await startFerret();
  if (server.external || !server.postgres) return;
  const client = new MongoClient(`${server.url}/harness`, { serverSelectionTimeoutMS: 5_000 });
  try {
    const people = client.db().collection<{ _id: string; email: string; n: number; tag: string }>("people");
    await people.createIndex({ email: 1 }, { unique: true });
    await people.createIndex({ n: 1, email: 1, tag: 1 });
    await people.insertMany(
      Array.from({ length: 200 }, (_, n) => ({ _id: `p${n}`, email: `e${n}@x`, n, tag: `t${n % 7}` })),
    );
    assert.deepEqual(await people.findOne({ email: "e7@x" }), { _id: "p7", email: "e7@x", n: 7, tag: "t0" });
    const stdout = await psql(
      server.postgres.port,
      `SELECT am.amname, pg_get_indexdef(i.indexrelid, 1, false) FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
         JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname LIKE 'people%' ORDER BY 1, 2`,
    );
    // _id_, email and n_email_tag as btrees (listed by their leading field), and one GIN twin for
    // each field any of them indexes.
    assert.deepEqual(stdout.trim().split("\n"), [
      "btree|((_jsonb -> '_id'::text))",
      "btree|((_jsonb -> 'email'::text))",
      "btree|((_jsonb -> 'n'::text))",
      "gin|((_jsonb -> '_id'::text))",
      "gin|((_jsonb -> 'email'::text))",
      "gin|((_jsonb -> 'n'::text))",
      "gin|((_jsonb -> 'tag'::text))",
    ]);
  } finally {
    await client.close();
    await server.stop();
  }
});

test("a server named by an env var is external and cannot be stopped", async () => {
  const previous = process.env.NATS_URL;
  process.env.NATS_URL = "nats://127.0.0.1:4999";
  try {
    const server = await startNats();
    assert.equal(server.external, true);
    assert.equal(server.port, 4999);
    assert.equal(server.pid, undefined);
    await assert.rejects(server.stop(), /NATS_URL points at an external server/);
    await assert.rejects(server.restart(), /external server/);
    await assert.rejects(server.kill(), /external server/);
  } finally {
    if (previous === undefined) delete process.env.NATS_URL;
    else process.env.NATS_URL = previous;
  }
});
