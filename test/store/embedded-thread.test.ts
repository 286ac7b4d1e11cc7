/**
 * The embedded store on its thread (lib/store/embedded-thread.ts, embedded-worker.ts): errors
 * that keep their classes across the thread, group commit, a full disk, damaged files, a closed
 * store, a thread that dies with operations in flight, and a process the thread does not keep
 * alive. store.test.ts runs the store contract on it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile, rm, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { DuplicateKeyError, StoreUnavailableError } from "../../lib/errors.ts";
import { ThreadedEmbeddedStore } from "../../lib/store/embedded-thread.ts";
import { DATABASE_FILE, StoreFileError } from "../../lib/store/sqlite.ts";
import type { Doc } from "../../lib/store/types.ts";
import { tempDirs } from "../support/temp-dirs.ts";

interface Item extends Doc {
  n: number;
  at?: Date;
}

const tempDir = tempDirs("store-thread-test-");

test("errors keep their class and details across the thread", async () => {
  const store = await ThreadedEmbeddedStore.open({ dataDir: await tempDir() });
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

test("writes that arrive together are committed together and answered each on its own", async () => {
  const dataDir = await tempDir();
  const store = await ThreadedEmbeddedStore.open({ dataDir });
  try {
    const items = store.collection<Item>("items");
    await items.ensureIndexes([{ name: "n_unique", fields: { n: 1 }, unique: true }]);
    const writes = Array.from({ length: 300 }, (_, i) => items.insertOne({ _id: `i${i}`, n: i % 200 }));
    const results = await Promise.allSettled(writes);
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(refused.length, 100);
    for (const r of refused) assert.ok((r as PromiseRejectedResult).reason instanceof DuplicateKeyError);
    assert.equal(await items.count({}), 200);
  } finally {
    await store.close();
  }
  const reopened = await ThreadedEmbeddedStore.open({ dataDir });
  try {
    assert.equal(
      await reopened.collection<Item>("items").count({}),
      200,
      "every acknowledged write is on disk",
    );
  } finally {
    await reopened.close();
  }
});

test("a full disk fails writes with StoreUnavailableError, keeps nothing half written, and passes when space returns", async () => {
  const dataDir = await tempDir();
  const store = await ThreadedEmbeddedStore.open({ dataDir });
  try {
    const items = store.collection<Item & { text: string }>("items");
    await items.ensureIndexes([{ name: "n", fields: { n: 1 } }]);
    await items.insertOne({ _id: "first", n: 0, text: "" });
    await store.setMaxPageCount(40);
    const text = "x".repeat(2_000);
    let acknowledged = 0;
    let refused = 0;
    for (let batch = 0; batch < 50 && refused === 0; batch++) {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          items.insertOne({ _id: `b${batch}-${i}`, n: batch * 10 + i, text }),
        ),
      );
      for (const result of results) {
        if (result.status === "fulfilled") acknowledged += 1;
        else {
          assert.ok(result.reason instanceof StoreUnavailableError, String(result.reason));
          refused += 1;
        }
      }
    }
    assert.ok(refused > 0, "the limit was reached");
    assert.equal(await items.count({}), acknowledged + 1, "exactly the acknowledged writes are stored");
    const many = Array.from({ length: 20 }, (_, i) => ({ _id: `many${i}`, n: 10_000 + i, text }));
    await assert.rejects(items.insertMany(many), StoreUnavailableError);
    assert.equal(await items.count({ _id: { $prefix: "many" } }), 0, "a refused batch left nothing");
    await store.setMaxPageCount(100_000);
    assert.equal(await items.insertMany(many), 20);
    await store.ping();
  } finally {
    await store.close();
  }
});

test("a file that is not a database, or is truncated, stops the open naming it and is left as it was", async () => {
  const garbled = await tempDir();
  const file = path.join(garbled, DATABASE_FILE);
  await writeFile(file, `not a database ${randomUUID()}`.repeat(200));
  const before = await readFile(file);
  await assert.rejects(ThreadedEmbeddedStore.open({ dataDir: garbled }), (err: unknown) => {
    assert.ok(err instanceof StoreFileError, String(err));
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, /npm run restore/);
    return true;
  });
  assert.deepEqual(await readFile(file), before, "never written over");

  const cut = await tempDir();
  const store = await ThreadedEmbeddedStore.open({ dataDir: cut });
  const items = store.collection<Item & { text: string }>("items");
  await items.insertMany(Array.from({ length: 500 }, (_, n) => ({ _id: `i${n}`, n, text: "y".repeat(500) })));
  await store.close();
  const whole = (await readFile(path.join(cut, DATABASE_FILE))).length;
  await truncate(path.join(cut, DATABASE_FILE), Math.floor(whole / 2));
  await assert.rejects(ThreadedEmbeddedStore.open({ dataDir: cut }), /is truncated/);
  assert.equal((await readFile(path.join(cut, DATABASE_FILE))).length, Math.floor(whole / 2));
});

test("a write after the data dir is removed fails with StoreUnavailableError, and keeps failing", async () => {
  const dataDir = await tempDir();
  const store = await ThreadedEmbeddedStore.open({ dataDir });
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
  const store = await ThreadedEmbeddedStore.open({ dataDir: await tempDir() });
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
  const store = await ThreadedEmbeddedStore.open({ dataDir: await tempDir() });
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
  const store = await ThreadedEmbeddedStore.open({ dataDir });
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
    assert.equal(
      await items.count({ _id: { $prefix: "m" } }),
      0,
      "the batch it was writing is not half there",
    );

    assert.deepEqual(await items.findOne({ _id: "kept" }), { _id: "kept", n: 0 }, "the stored data is back");
    assert.notEqual(await restarted, worker, "a new thread answered");
    await assert.rejects(items.insertOne({ _id: "again", n: 0 }), { index: "n_unique" });
    await store.ping();
  } finally {
    await store.close();
  }
});

test("a store opened while the last one's thread is ending is answered by a thread of its own", async () => {
  const first = await ThreadedEmbeddedStore.open({ dataDir: await tempDir() });
  await first.collection<Item>("items").insertOne({ _id: "a", n: 1 });
  const secondDir = await tempDir();
  // Closing the last open store ends its thread; the next store opens just as that begins.
  const terminate = Worker.prototype.terminate;
  let second: ThreadedEmbeddedStore | undefined;
  let answered: Promise<Item[]> | undefined;
  Worker.prototype.terminate = function (this: Worker) {
    Worker.prototype.terminate = terminate;
    answered = ThreadedEmbeddedStore.open({ dataDir: secondDir }).then(async (opened) => {
      second = opened;
      const items = opened.collection<Item>("items");
      await items.insertOne({ _id: "b", n: 2 });
      return items.find({});
    });
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
