/** Runs the store contract against the embedded store (SQLite) and against FerretDB (or MONGO_URL). */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { type AddressInfo, createServer, type Socket } from "node:net";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, test } from "node:test";
import { MongoClient } from "mongodb";
import { DuplicateKeyError, StoreUnavailableError } from "../../lib/errors.ts";
import { openStore } from "../../lib/store/index.ts";
import { MongoStore } from "../../lib/store/mongo.ts";
import { SqliteStore } from "../../lib/store/sqlite.ts";
import { type QueryTarget, toSqlWhere } from "../../lib/store/sqlite-query.ts";
import type { Doc, Filter, IndexSpec, Store } from "../../lib/store/types.ts";
import { type ServerHandle, startFerret } from "../harness/servers.ts";
import { tempDirs } from "../support/temp-dirs.ts";
import { storeContract } from "./store-contract.ts";

interface Note extends Doc {
  text: string;
  at: Date;
}

const tempDir = tempDirs("store-test-");

/** The URL with its database replaced, so each run works in a database of its own. */
function withDatabase(url: string, database: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/[^/?]*)(\/[^?]*)?/, `$1/${database}`);
}

storeContract(
  "embedded (SQLite on its thread)",
  async () => openStore({ dataDir: path.join(await tempDir(), "created-on-open") }),
  async () => {},
);

storeContract(
  "SQLite on the calling thread",
  async () => new SqliteStore({ file: path.join(await tempDir(), "direct.sqlite") }),
  async () => {},
);

/** SQLite's plan for a filter on a collection, read through a second connection to the file. */
function planOf(file: string, table: string, filter: Filter, target: QueryTarget): string {
  const db = new DatabaseSync(file);
  try {
    const where = toSqlWhere(filter, target);
    const rows = db
      .prepare(`EXPLAIN QUERY PLAN SELECT doc FROM "${table}" WHERE ${where.sql}`)
      .all(...where.params) as { detail: string }[];
    return rows.map((row) => row.detail).join("; ");
  } finally {
    db.close();
  }
}

test("embedded: queries on indexed fields, arrays' elements included, are answered from an index", async () => {
  const file = path.join(await tempDir(), "plans.sqlite");
  const store = new SqliteStore({ file });
  try {
    const messages = store.collection<Doc & { chatId: string; seq: number; tags: string[] }>("leading");
    await messages.ensureIndexes([
      { name: "seq", fields: { chatId: 1, seq: 1 }, unique: true },
      { name: "tags_seq", fields: { tags: 1, seq: -1 } },
    ]);
    for (let seq = 1; seq <= 5; seq++) {
      await messages.insertOne({
        _id: `m${seq}`,
        chatId: seq % 2 ? "a" : "b",
        seq,
        tags: [`t${seq}`, "all"],
      });
    }
    const after2 = await messages.find({ chatId: "a", seq: { $gt: 2 } }, { sort: { seq: 1 } });
    const tagged = await messages.find({ tags: { $in: ["t1", "t4"] } }, { sort: { seq: 1 } });
    const all = await messages.find({ tags: "all" }, { sort: { seq: -1 } });
    assert.deepEqual(
      after2.map((m) => m.seq),
      [3, 5],
    );
    assert.deepEqual(
      tagged.map((m) => m.seq),
      [1, 4],
    );
    assert.deepEqual(
      all.map((m) => m.seq),
      [5, 4, 3, 2, 1],
    );
    const target: QueryTarget = {
      multikeyTable: '"leading$multi"',
      indexedFields: new Set(["chatId", "seq", "tags"]),
      multikeyFields: new Set(["tags"]),
    };
    const bySeq = planOf(file, "leading", { chatId: "a", seq: { $gt: 2 } }, target);
    assert.match(bySeq, /USING INDEX leading\$seq/);
    const byTag = planOf(file, "leading", { tags: "t1" }, target);
    assert.match(byTag, /leading\$multi\$value/);
    assert.doesNotMatch(byTag, /SCAN leading(?! USING)/);
  } finally {
    await store.close();
  }
});

test("embedded: a compound unique index finds every key and refuses every repeat, also after a reopen", async () => {
  const dataDir = await tempDir();
  type Sent = Doc & { chatId: string; senderId: string; clientMsgId: string };
  const spec: IndexSpec = {
    name: "client_msg",
    fields: { chatId: 1, senderId: 1, clientMsgId: 1 },
    unique: true,
  };
  const docs: Sent[] = Array.from({ length: 300 }, (_, i) => ({
    _id: `m${i}`,
    chatId: `c${i % 7}`,
    senderId: `u${i % 5}`,
    clientMsgId: randomUUID(),
  }));
  for (const round of ["first open", "reopened"]) {
    const store = await openStore({ dataDir });
    const sent = store.collection<Sent>("sent");
    await sent.ensureIndexes([spec]);
    if (round === "first open") assert.equal(await sent.insertMany(docs), docs.length);
    for (const d of docs) {
      const { chatId, senderId, clientMsgId } = d;
      assert.equal((await sent.findOne({ chatId, senderId, clientMsgId }))?._id, d._id, round);
      await assert.rejects(sent.insertOne({ ...d, _id: `again-${d._id}` }), DuplicateKeyError);
    }
    const other = docs[0] as Sent;
    await sent.insertOne({ ...other, _id: `x-${round}`, senderId: `someone else, ${round}` });
    await store.close();
  }
});

test("embedded: an index whose definition changed is made again; a unique one that the data breaks is refused", async () => {
  const store = new SqliteStore({ file: path.join(await tempDir(), "changed.sqlite") });
  try {
    const items = store.collection<Doc & { a: number; b: number }>("items");
    await items.ensureIndexes([{ name: "ab", fields: { a: 1 } }]);
    await items.insertOne({ _id: "1", a: 1, b: 1 });
    await items.insertOne({ _id: "2", a: 1, b: 2 });
    await items.ensureIndexes([{ name: "ab", fields: { a: 1, b: 1 }, unique: true }]);
    await assert.rejects(items.insertOne({ _id: "3", a: 1, b: 2 }), { index: "ab" });
    await assert.rejects(items.ensureIndexes([{ name: "a_unique", fields: { a: 1 }, unique: true }]), {
      index: "a_unique",
    });
    assert.equal(await items.count({}), 2);
  } finally {
    await store.close();
  }
});

let ferret: ServerHandle;
const database = `contract_${randomUUID().slice(0, 8)}`;
storeContract(
  "mongo",
  async () => {
    ferret = await startFerret();
    return openStore({ mongoUrl: withDatabase(ferret.url, database), dataDir: await tempDir() });
  },
  async () => {
    if (!ferret.external) return ferret.stop();
    const client = new MongoClient(ferret.url);
    await client.db(database).dropDatabase();
    await client.close();
  },
);

describe("embedded store on disk", () => {
  test("a reopened store finds the documents and unique indexes it left", async () => {
    const dataDir = await tempDir();
    const indexes: IndexSpec[] = [{ name: "text_unique", fields: { text: 1 }, unique: true }];
    const at = new Date("2024-02-03T04:05:06.789Z");
    const first = await openStore({ dataDir });
    try {
      const notes = first.collection<Note>("notes");
      await notes.ensureIndexes(indexes);
      await notes.insertOne({ _id: "n1", text: "hello", at });
      await notes.updateOne({ _id: "n1" }, { $set: { text: "hello again" } });
      await notes.insertOne({ _id: "n2", text: "bye", at });
      await notes.deleteOne({ _id: "n2" });
    } finally {
      await first.close();
    }

    const second = await openStore({ dataDir });
    try {
      const reopened = second.collection<Note>("notes");
      assert.deepEqual(await reopened.find({}), [{ _id: "n1", text: "hello again", at }]);
      await assert.rejects(reopened.insertOne({ _id: "n3", text: "hello again", at }), DuplicateKeyError);
      await reopened.ensureIndexes(indexes);
      await assert.rejects(reopened.insertOne({ _id: "n3", text: "hello again", at }), {
        index: "text_unique",
      });
    } finally {
      await second.close();
    }
  });

  test("a removed data dir fails ping and writes with StoreUnavailableError, and keeps failing", async () => {
    const dataDir = await tempDir();
    const store = await openStore({ dataDir });
    try {
      const notes = store.collection<Note>("notes");
      await notes.insertOne({ _id: "n1", text: "kept", at: new Date() });
      await store.ping();
      await rm(dataDir, { recursive: true });
      await assert.rejects(store.ping(), StoreUnavailableError);
      await assert.rejects(
        notes.insertOne({ _id: "n2", text: "lost", at: new Date() }),
        StoreUnavailableError,
      );
      await assert.rejects(
        notes.insertOne({ _id: "n3", text: "lost", at: new Date() }),
        StoreUnavailableError,
      );
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});

describe("expiry of TTL-indexed documents", () => {
  const expired = new Date(Date.now() - 60_000);
  const live = new Date(Date.now() + 60_000);
  const ttl: IndexSpec[] = [{ name: "expires_ttl", fields: { at: 1 }, expireAfterSeconds: 0 }];

  test("the embedded store sweeps them", async () => {
    const store = new SqliteStore({ file: path.join(await tempDir(), "ttl.sqlite") });
    try {
      const notes = store.collection<Note>("notes");
      await notes.ensureIndexes(ttl);
      await notes.insertOne({ _id: "old", text: "old", at: expired });
      await notes.insertOne({ _id: "new", text: "new", at: live });
      store.sweepExpired();
      assert.deepEqual(
        (await notes.find({})).map((note) => note._id),
        ["new"],
      );
    } finally {
      await store.close();
    }
  });

  test("the FerretDB store sweeps them", {
    skip: process.env.MONGO_URL ? "MONGO_URL is external" : false,
  }, async () => {
    const server = await startFerret();
    const store = new MongoStore(`${server.url}/ttl`);
    try {
      const notes = store.collection<Note>("notes");
      await notes.ensureIndexes(ttl);
      await notes.insertOne({ _id: "old", text: "old", at: expired });
      await notes.insertOne({ _id: "new", text: "new", at: live });
      await store.sweeper.sweep();
      assert.deepEqual(
        (await notes.find({})).map((note) => note._id),
        ["new"],
      );
    } finally {
      await store.close();
      await server.stop();
    }
  });
});

describe("mongo store when the server goes away", {
  skip: process.env.MONGO_URL ? "MONGO_URL is external" : false,
}, () => {
  let server: ServerHandle;
  let store: Store;

  before(async () => {
    server = await startFerret();
    store = await openStore({ mongoUrl: `${server.url}/chaos`, dataDir: await tempDir() });
  });

  after(async () => {
    await store.close();
    await server.stop();
  });

  test("operations reject with StoreUnavailableError while it is down and work again after", async () => {
    const notes = store.collection<Note>("notes");
    const at = new Date();
    await notes.insertOne({ _id: "before", text: "kept", at });
    await server.kill();
    await assert.rejects(store.ping(), StoreUnavailableError);
    await assert.rejects(notes.insertMany([{ _id: "during", text: "refused", at }]), StoreUnavailableError);
    await assert.rejects(notes.findOne({ _id: "before" }), StoreUnavailableError);
    await assert.rejects(
      notes.updateOne({ _id: "before" }, { $set: { text: "lost" } }),
      StoreUnavailableError,
    );
    await server.restart();
    await store.ping();
    assert.deepEqual(await notes.findOne({ _id: "before" }), { _id: "before", text: "kept", at });
  });
});

test("an operation waits for a server that does not answer at most half the request timeout", async () => {
  // A server that takes connections and never answers, as a host behind a dead route looks: the
  // driver's own defaults would wait 30 s, this store's 5 s, either longer than the call.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const { port } = silent.address() as AddressInfo;
  const requestTimeoutMs = 2_000;
  const store = await openStore({
    mongoUrl: `mongodb://127.0.0.1:${port}/silent`,
    dataDir: await tempDir(),
    requestTimeoutMs,
  });
  try {
    const started = Date.now();
    await assert.rejects(store.collection<Note>("notes").findOne({ _id: "any" }), StoreUnavailableError);
    const waited = Date.now() - started;
    assert.ok(waited < requestTimeoutMs, `answered within the request timeout: waited ${waited} ms`);
  } finally {
    await store.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

describe("nodes that start together", () => {
  test("create the indexes of a new collection at once, and every one of them gets them", async () => {
    const server = await startFerret();
    const url = withDatabase(server.url, `together_${randomUUID().slice(0, 8)}`);
    const stores = await Promise.all(
      Array.from({ length: 4 }, async () => openStore({ mongoUrl: url, dataDir: await tempDir() })),
    );
    const indexes: IndexSpec[] = [
      { name: "text_unique", fields: { text: 1 }, unique: true },
      { name: "at", fields: { at: 1 } },
      { name: "at_text", fields: { at: 1, text: 1 } },
    ];
    try {
      await Promise.all(stores.map((store) => store.collection<Note>("notes").ensureIndexes(indexes)));
      const at = new Date();
      const [first, second] = stores.map((store) => store.collection<Note>("notes"));
      await first?.insertOne({ _id: "a", text: "same", at });
      await assert.rejects(
        second?.insertOne({ _id: "b", text: "same", at }) ?? Promise.reject(),
        DuplicateKeyError,
      );
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      if (server.external) {
        const client = new MongoClient(server.url);
        await client.db(new URL(url).pathname.slice(1)).dropDatabase();
        await client.close();
      } else await server.stop();
    }
  });
});
