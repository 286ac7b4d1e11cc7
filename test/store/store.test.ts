/** Runs the store contract against the embedded store and against FerretDB (or MONGO_URL). */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { type AddressInfo, createServer, type Socket } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { MongoClient } from "mongodb";
import { DuplicateKeyError, StoreUnavailableError } from "../../lib/errors.ts";
import { EmbeddedStore } from "../../lib/store/embedded.ts";
import { openStore } from "../../lib/store/index.ts";
import { MongoStore } from "../../lib/store/mongo.ts";
import { Datastore } from "../../lib/store/nedb.ts";
import type { Doc, IndexSpec, Store } from "../../lib/store/types.ts";
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

let embeddedDir = "";
storeContract(
  "embedded",
  async () => {
    embeddedDir = await tempDir();
    return openStore({ dataDir: path.join(embeddedDir, "created-on-open") });
  },
  async () => {},
);

test("embedded: a query on a compound index's leading field is answered from an index, not a scan", async () => {
  // In this thread, where the scan counter can see nedb (openStore runs it on a thread of its own).
  const store = new EmbeddedStore({ dataDir: await tempDir() });
  const proto = Datastore.prototype as unknown as { getAllData(): unknown[] };
  const scan = proto.getAllData;
  let scans = 0;
  proto.getAllData = function (this: unknown) {
    scans += 1;
    return scan.call(this);
  };
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
    scans = 0;
    const after2 = await messages.find({ chatId: "a", seq: { $gt: 2 } }, { sort: { seq: 1 } });
    const tagged = await messages.find({ tags: { $in: ["t1", "t4"] } }, { sort: { seq: 1 } });
    assert.deepEqual(
      after2.map((m) => m.seq),
      [3, 5],
    );
    assert.deepEqual(
      tagged.map((m) => m.seq),
      [1, 4],
    );
    assert.equal(scans, 0, "no query read the whole collection");
  } finally {
    proto.getAllData = scan;
    await store.close();
  }
});

test("embedded: a non-unique compound index is kept as its leading field only, also in a file that had it", async () => {
  const dataDir = await tempDir();
  // A file written by a release that kept the compound index in nedb.
  const older = new Datastore({ filename: path.join(dataDir, "chats.db") });
  await older.loadDatabaseAsync();
  await older.ensureIndexAsync({ fieldName: ["members", "updatedAt"] });
  await older.insertAsync({ _id: "c1", members: ["a", "b"], updatedAt: new Date(1) });
  await older.compactDatafileAsync();
  const store = await openStore({ dataDir });
  const chats = store.collection<Doc & { members: string[]; updatedAt: Date }>("chats");
  await chats.ensureIndexes([{ name: "members_updated", fields: { members: 1, updatedAt: -1 } }]);
  await store.close();
  const reopened = new Datastore({ filename: path.join(dataDir, "chats.db") });
  await reopened.loadDatabaseAsync();
  const keys = Object.keys((reopened as unknown as { indexes: Record<string, unknown> }).indexes).sort();
  assert.deepEqual(
    keys,
    ["_id", "members"],
    "the compound index is gone from the file, its leading field indexed",
  );
  assert.equal((await reopened.findAsync({ members: "b" })).length, 1);
});

test("embedded: a compound unique index finds every key and refuses every repeat, also after a reload", async () => {
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

  test("ping rejects with StoreUnavailableError when the data dir is gone", async () => {
    const dataDir = await tempDir();
    const store = await openStore({ dataDir });
    try {
      await store.ping();
      await rm(dataDir, { recursive: true });
      await assert.rejects(store.ping(), StoreUnavailableError);
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});

describe("expiry of TTL-indexed documents", () => {
  const expired = new Date(Date.now() - 60_000);
  const live = new Date(Date.now() + 60_000);
  const ttl: IndexSpec[] = [{ name: "expires_ttl", fields: { at: 1 }, expireAfterSeconds: 0 }];

  test("the embedded store drops them when they are read", async () => {
    const store = await openStore({ dataDir: await tempDir() });
    try {
      const notes = store.collection<Note>("notes");
      await notes.ensureIndexes(ttl);
      await notes.insertOne({ _id: "old", text: "old", at: expired });
      await notes.insertOne({ _id: "new", text: "new", at: live });
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
