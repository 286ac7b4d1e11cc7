/**
 * The embedded store on its thread (lib/store/embedded-thread.ts): the same contract as the store
 * in the caller's thread, errors that keep their classes across the thread, a closed store, a
 * thread that dies with operations in flight, and a process the thread does not keep alive.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { DuplicateKeyError, StoreUnavailableError } from "../../lib/errors.ts";
import { EmbeddedStore } from "../../lib/store/embedded.ts";
import { ThreadedEmbeddedStore } from "../../lib/store/embedded-thread.ts";
import type { Doc } from "../../lib/store/types.ts";
import { tempDirs } from "../support/temp-dirs.ts";
import { storeContract } from "./store-contract.ts";

interface Item extends Doc {
  n: number;
  at?: Date;
}

const tempDir = tempDirs("store-thread-test-");

// The backend itself, in this thread: what the threaded store hands its operations to.
storeContract(
  "embedded, in the caller's thread",
  async () => new EmbeddedStore({ dataDir: await tempDir() }),
  async () => {},
);

test("errors keep their class and details across the thread", async () => {
  const store = new ThreadedEmbeddedStore({ dataDir: await tempDir() });
  try {
    const items = store.collection<Item>("items");
    await items.ensureIndexes([{ name: "n_unique", fields: { n: 1 }, unique: true }]);
    const at = new Date("2025-01-02T03:04:05.006Z");
    await items.insertOne({ _id: "a", n: 1, at });
    assert.deepEqual(await items.findOne({ _id: "a" }), { _id: "a", n: 1, at }, "a Date comes back a Date");
    await assert.rejects(items.insertOne({ _id: "b", n: 1 }), (err: unknown) => {
      assert.ok(err instanceof DuplicateKeyError);
      assert.equal(err.index, "n_unique");
      return true;
    });
    await assert.rejects(items.find({ n: undefined }), (err: unknown) => {
      assert.ok(err instanceof TypeError);
      assert.match(err.message, /Filter field "n" is undefined/);
      return true;
    });
    assert.throws(() => store.collection("bad name"), TypeError);
    assert.equal(
      await items.insertMany([
        { _id: "c", n: 2 },
        { _id: "d", n: 1 },
        { _id: "e", n: 3 },
      ]),
      1,
    );
    assert.deepEqual(
      (await items.find({}, { sort: { n: 1 } })).map((item) => item._id),
      ["a", "c"],
    );
  } finally {
    await store.close();
  }
});

test("writes made after a compaction are in the file the next open reads", async () => {
  const dataDir = await tempDir();
  // Compaction renames a new file over the old one; an append to the old one's descriptor is lost.
  const first = new ThreadedEmbeddedStore({ dataDir, compactionIntervalMs: 20 });
  try {
    const items = first.collection<Item>("items");
    for (let n = 1; n <= 5; n++) {
      await items.insertOne({ _id: `i${n}`, n });
      await items.updateOne({ _id: `i${n}` }, { $set: { n: n * 10 } });
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
  } finally {
    await first.close();
  }
  const second = new ThreadedEmbeddedStore({ dataDir });
  try {
    const items = second.collection<Item>("items");
    assert.deepEqual(
      (await items.find({}, { sort: { n: 1 } })).map((item) => item.n),
      [10, 20, 30, 40, 50],
    );
  } finally {
    await second.close();
  }
});

test("a write after the data dir is removed fails with StoreUnavailableError, and keeps failing", async () => {
  const dataDir = await tempDir();
  const store = new ThreadedEmbeddedStore({ dataDir });
  try {
    const items = store.collection<Item>("items");
    await items.insertOne({ _id: "a", n: 1 });
    await rm(dataDir, { recursive: true });
    await assert.rejects(items.insertOne({ _id: "b", n: 2 }), StoreUnavailableError);
    await assert.rejects(items.insertMany([{ _id: "c", n: 3 }]), StoreUnavailableError);
    await assert.rejects(store.ping(), StoreUnavailableError);
  } finally {
    await store.close().catch(() => undefined);
  }
});

test("an argument that cannot cross to the thread is refused, and the store goes on", async () => {
  const store = new ThreadedEmbeddedStore({ dataDir: await tempDir() });
  try {
    const items = store.collection<Item & { f?: () => void }>("items");
    await assert.rejects(items.insertOne({ _id: "a", n: 1, f: () => undefined }), { name: "DataCloneError" });
    await items.insertOne({ _id: "b", n: 2 });
    assert.deepEqual(await items.find({}), [{ _id: "b", n: 2 }]);
  } finally {
    await store.close();
  }
});

test("a closed store rejects with StoreUnavailableError", async () => {
  const store = new ThreadedEmbeddedStore({ dataDir: await tempDir() });
  const items = store.collection<Item>("items");
  await items.insertOne({ _id: "a", n: 1 });
  await store.close();
  await assert.rejects(items.findOne({ _id: "a" }), StoreUnavailableError);
  await assert.rejects(store.ping(), StoreUnavailableError);
});

test("a thread that dies fails what waited for it, and the next operation gets a new one with the data and indexes", async () => {
  const dataDir = await tempDir();
  // No store is open on the thread now (every test closes its own), so opening one starts it.
  const started = new Promise<Worker>((resolve) => process.once("worker", resolve));
  const store = new ThreadedEmbeddedStore({ dataDir });
  const worker = await started;
  try {
    const items = store.collection<Item>("items");
    await items.ensureIndexes([{ name: "n_unique", fields: { n: 1 }, unique: true }]);
    await items.insertOne({ _id: "kept", n: 0 });
    const many = Array.from({ length: 50_000 }, (_, i) => ({ _id: `m${i}`, n: i + 1 }));
    const inFlight = items.insertMany(many);
    const restarted = new Promise<Worker>((resolve) => process.once("worker", resolve));
    await worker.terminate();
    await assert.rejects(inFlight, StoreUnavailableError);

    assert.deepEqual(await items.findOne({ _id: "kept" }), { _id: "kept", n: 0 }, "the stored data is back");
    assert.notEqual(await restarted, worker, "a new thread answered");
    await assert.rejects(items.insertOne({ _id: "again", n: 0 }), { index: "n_unique" });
    await store.ping();
  } finally {
    await store.close();
  }
});

test("a store opened while the last one's thread is ending is answered by a thread of its own", async () => {
  const first = new ThreadedEmbeddedStore({ dataDir: await tempDir() });
  await first.collection<Item>("items").insertOne({ _id: "a", n: 1 });
  const secondDir = await tempDir();
  // Closing the last open store ends its thread; the next store opens just as that begins.
  const terminate = Worker.prototype.terminate;
  let second: ThreadedEmbeddedStore | undefined;
  let answered: Promise<Item[]> | undefined;
  Worker.prototype.terminate = function (this: Worker) {
    Worker.prototype.terminate = terminate;
    second = new ThreadedEmbeddedStore({ dataDir: secondDir });
    const items = second.collection<Item>("items");
    answered = items.insertOne({ _id: "b", n: 2 }).then(() => items.find({}));
    return terminate.call(this);
  };
  try {
    await first.close();
    assert.ok(answered, "the thread was ended");
    assert.deepEqual(await answered, [{ _id: "b", n: 2 }]);
  } finally {
    Worker.prototype.terminate = terminate;
    await second?.close();
  }
});

test("the store's thread does not keep the process alive once nothing waits for it", async () => {
  const dataDir = await tempDir();
  const script = path.join(dataDir, "main.mjs");
  const store = JSON.stringify(new URL("../../lib/store/index.ts", import.meta.url).href);
  await writeFile(
    script,
    `import { openStore } from ${store};
    const store = await openStore({ dataDir: ${JSON.stringify(dataDir)} });
    const items = store.collection("items");
    await items.insertOne({ _id: "x", f: () => 1 }).catch(() => undefined);
    await items.insertOne({ _id: "a", n: 1 });
    console.log(JSON.stringify(await items.find({})));`,
  );
  // The store is never closed: the process must still end, by itself and with its answer (an
  // operation left waiting on an unreferenced thread would end it early, with exit code 13; a
  // refused one still counted as waiting would keep it alive).
  const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 20_000 });
  assert.deepEqual(JSON.parse(stdout), [{ _id: "a", n: 1 }]);
});
