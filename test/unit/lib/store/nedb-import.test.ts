/**
 * The nedb importer on nedb files written by the test as text: update lines, tombstones, index
 * lines, nested dates, a torn last line and a file too damaged to import, read back through the
 * SQLite store; what a second start does; and an import killed with SIGKILL halfway through a
 * large file, which the next start redoes from the beginning.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { IMPORT_FILE, importNedbDataDir, NedbImportError } from "../../../../lib/store/nedb-import.ts";
import { DATABASE_FILE, SqliteStore } from "../../../../lib/store/sqlite.ts";
import type { Doc } from "../../../../lib/store/types.ts";
import { tempDirs } from "../../../support/temp-dirs.ts";

const IMPORTER = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../../../lib/store/nedb-import.ts",
);
const tempDir = tempDirs("nedb-import-test-");

function recorder() {
  const logged = { info: [] as string[], warn: [] as string[] };
  return {
    logged,
    log: {
      info: (msg: string) => logged.info.push(msg),
      warn: (msg: string) => logged.warn.push(msg),
    },
  };
}

const date = (iso: string) => ({ $$date: Date.parse(iso) });
const line = (value: unknown) => JSON.stringify(value);

/** accounts.db as nedb leaves it after a crash: updates, a tombstone, index lines, a torn last line. */
const ACCOUNTS = [
  line({ $$indexCreated: { fieldName: "email", unique: true, sparse: false } }),
  line({ _id: "a", email: "a@x.test", name: "first", createdAt: date("2026-01-02T03:04:05.678Z") }),
  line({ _id: "b", email: "b@x.test", name: "bee", createdAt: date("2026-01-03T00:00:00.000Z") }),
  line({ _id: "a", email: "a@x.test", name: "second", createdAt: date("2026-01-02T03:04:05.678Z") }),
  line({ $$deleted: true, _id: "b" }),
  line({
    _id: "c",
    email: "c@x.test",
    createdAt: date("2026-02-01T00:00:00.000Z"),
    lastMessage: { seq: 3, createdAt: date("2026-02-02T10:00:00.001Z") },
    seen: [date("2026-02-03T00:00:00.000Z"), { at: date("2026-02-04T00:00:00.000Z") }],
    text: "line\u2028separator, paragraph\u2029separator and \u0085 next-line",
  }),
  line({ $$indexRemoved: "email" }),
  line({ _id: "b", email: "b@x.test", name: "bee again", createdAt: date("2026-03-01T00:00:00.000Z") }),
  line({ _id: "e", email: "e@x.test" }),
  line({ $$deleted: true, _id: "e" }),
  line({ _id: "f", email: "f@x.test", name: "eff" }),
  '{"_id":"d","email":"d@x.t',
].join("\n");

async function nedbDir(files: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

async function withStore<R>(dir: string, fn: (store: SqliteStore) => Promise<R>): Promise<R> {
  const store = new SqliteStore({ file: path.join(dir, DATABASE_FILE) });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function today(): string {
  return `nedb-backup-${new Date().toISOString().slice(0, 10)}`;
}

describe("importing nedb files", () => {
  test("each file's lines are applied in order: updates replace, tombstones delete, dates come back", async () => {
    const dir = await nedbDir({
      "accounts.db": ACCOUNTS,
      "receipts.db": `${line({ _id: "r1", chatId: "c", lastReadSeq: 2 })}\n${line({ _id: "r1", chatId: "c", lastReadSeq: 5 })}\n`,
    });
    const { log, logged } = recorder();
    assert.equal(await importNedbDataDir(dir, log), "imported");
    await withStore(dir, async (store) => {
      const accounts = store.collection<Doc & Record<string, unknown>>("accounts");
      const all = await accounts.find({}, { sort: { _id: 1 } });
      assert.deepEqual(
        all.map((doc) => [doc._id, doc.name]),
        [
          ["a", "second"],
          ["b", "bee again"],
          ["c", undefined],
          ["f", "eff"],
        ],
      );
      const c = all[2] as unknown as {
        createdAt: Date;
        lastMessage: { seq: number; createdAt: Date };
        seen: [Date, { at: Date }];
        text: string;
      };
      assert.ok(c.createdAt instanceof Date);
      assert.equal(c.createdAt.toISOString(), "2026-02-01T00:00:00.000Z");
      assert.deepEqual(c.lastMessage, { seq: 3, createdAt: new Date("2026-02-02T10:00:00.001Z") });
      assert.deepEqual(c.seen, [
        new Date("2026-02-03T00:00:00.000Z"),
        { at: new Date("2026-02-04T00:00:00.000Z") },
      ]);
      assert.equal(c.text, "line\u2028separator, paragraph\u2029separator and \u0085 next-line");
      assert.equal(await accounts.findOne({ _id: "d" }), null);
      const byDate = await accounts.find({ createdAt: { $gte: new Date("2026-02-01T00:00:00.000Z") } });
      assert.deepEqual(byDate.map((doc) => doc._id).sort(), ["b", "c"]);
      assert.deepEqual(await store.collection("receipts").findOne({ _id: "r1" }), {
        _id: "r1",
        chatId: "c",
        lastReadSeq: 5,
      });
      assert.deepEqual(await store.collectionNames(), ["accounts", "receipts"]);
    });
    const accountsFile = path.join(dir, "accounts.db");
    assert.deepEqual(logged.warn, [`nedb import: ${accountsFile} line 12 is not a nedb document; skipped`]);
    assert.ok(
      logged.info.some((msg) =>
        msg.includes("accounts.db done: 12 lines read, 4 documents kept, 1 malformed"),
      ),
    );
    assert.ok(logged.info.some((msg) => msg.includes("receipts.db done: 2 lines read, 1 documents kept")));
    assert.deepEqual((await readdir(dir)).sort(), [DATABASE_FILE, today()].sort());
    assert.deepEqual((await readdir(path.join(dir, today()))).sort(), ["accounts.db", "receipts.db"]);
    assert.equal(await readFile(path.join(dir, today(), "accounts.db"), "utf8"), ACCOUNTS);
  });

  test("nedb's crash-safe `~` file is read when the file itself is missing, and moved either way", async () => {
    const dir = await nedbDir({
      "chats.db~": line({ _id: "from-tilde", members: ["u1", "u2"] }),
      "profiles.db": line({ _id: "p", from: "db" }),
      "profiles.db~": line({ _id: "p", from: "tilde" }),
    });
    assert.equal(await importNedbDataDir(dir, recorder().log), "imported");
    await withStore(dir, async (store) => {
      assert.deepEqual(await store.collection("chats").findOne({ members: "u2" }), {
        _id: "from-tilde",
        members: ["u1", "u2"],
      });
      assert.deepEqual(await store.collection("profiles").find({}), [{ _id: "p", from: "db" }]);
    });
    assert.deepEqual((await readdir(path.join(dir, today()))).sort(), [
      "chats.db~",
      "profiles.db",
      "profiles.db~",
    ]);
  });

  test("a file with more than 10% malformed lines fails the import, naming it, and leaves every file as it was", async () => {
    const garbage = [
      ...Array.from({ length: 8 }, (_, i) => line({ _id: `m${i}`, n: i })),
      "not json",
      '{"_id": 5}',
    ].join("\n");
    const good = line({ _id: "x", ok: true });
    const dir = await nedbDir({ "accounts.db": good, "messages.db": garbage });
    const { log, logged } = recorder();
    await assert.rejects(importNedbDataDir(dir, log), (err: unknown) => {
      assert.ok(err instanceof NedbImportError);
      assert.equal(err.file, path.join(dir, "messages.db"));
      assert.match(err.message, /2 of the 10 lines of .*messages\.db are not nedb documents/);
      return true;
    });
    assert.equal(logged.warn.length, 2);
    assert.deepEqual((await readdir(dir)).sort(), ["accounts.db", "messages.db"]);
    assert.equal(await readFile(path.join(dir, "messages.db"), "utf8"), garbage);
    assert.equal(await readFile(path.join(dir, "accounts.db"), "utf8"), good);
  });

  test("exactly 10% malformed is tolerated, as nedb tolerates it", async () => {
    const lines = [...Array.from({ length: 9 }, (_, i) => line({ _id: `m${i}` })), "{torn"];
    const dir = await nedbDir({ "messages.db": lines.join("\n") });
    assert.equal(await importNedbDataDir(dir, recorder().log), "imported");
    await withStore(dir, async (store) => assert.equal(await store.collection("messages").count({}), 9));
  });

  test("a document longer than a read of the file arrives whole", async () => {
    const long = "ü".repeat(300_000);
    const dir = await nedbDir({
      "chats.db": [line({ _id: "short" }), line({ _id: "long", long }), line({ _id: "after" })].join("\n"),
    });
    assert.equal(await importNedbDataDir(dir, recorder().log), "imported");
    await withStore(dir, async (store) => {
      const chats = store.collection<Doc & { long?: string }>("chats");
      assert.equal((await chats.findOne({ _id: "long" }))?.long, long);
      assert.equal(await chats.count({}), 3);
    });
  });

  test("a dir without nedb files is left alone", async () => {
    const dir = await nedbDir({ "notes.txt": "hello", "my.data.db": "not a collection name" });
    assert.equal(await importNedbDataDir(dir, recorder().log), "none");
    assert.deepEqual((await readdir(dir)).sort(), ["my.data.db", "notes.txt"]);
  });
});

describe("starting again", () => {
  test("a second start imports nothing; nedb files that turn up later are moved, not imported", async () => {
    const dir = await nedbDir({ "accounts.db": ACCOUNTS });
    assert.equal(await importNedbDataDir(dir, recorder().log), "imported");
    const before = await stat(path.join(dir, DATABASE_FILE));
    assert.equal(await importNedbDataDir(dir, recorder().log), "none");

    // A move cut short: the rest joins the backup folder the first files went to.
    await writeFile(path.join(dir, "sessions.db"), line({ _id: "late" }));
    const { log, logged } = recorder();
    assert.equal(await importNedbDataDir(dir, log), "none");
    assert.match(logged.warn[0] ?? "", /sessions\.db were not imported; moved to .*nedb-backup-/);
    assert.deepEqual((await readdir(path.join(dir, today()))).sort(), ["accounts.db", "sessions.db"]);
    // A name the folder holds already: a folder of its own.
    await writeFile(path.join(dir, "accounts.db"), line({ _id: "later" }));
    assert.equal(await importNedbDataDir(dir, recorder().log), "none");
    assert.deepEqual(await readdir(path.join(dir, `${today()}-2`)), ["accounts.db"]);

    assert.deepEqual((await readdir(dir)).sort(), [DATABASE_FILE, today(), `${today()}-2`].sort());
    assert.equal((await stat(path.join(dir, DATABASE_FILE))).mtimeMs, before.mtimeMs);
    await withStore(dir, async (store) => {
      assert.equal(await store.collection("accounts").count({}), 4);
      assert.equal(await store.collection("sessions").count({}), 0);
    });
  });

  test("a backup folder of the same day gets a numbered neighbour", async () => {
    const dir = await nedbDir({ "accounts.db": line({ _id: "a" }) });
    await mkdir(path.join(dir, today()));
    assert.equal(await importNedbDataDir(dir, recorder().log), "imported");
    assert.deepEqual(await readdir(path.join(dir, today())), []);
    assert.deepEqual(await readdir(path.join(dir, `${today()}-2`)), ["accounts.db"]);
  });

  test("an unfinished import left by a killed run is replaced, not added to", async () => {
    const dir = await nedbDir({ "accounts.db": line({ _id: "real" }) });
    const leftover = new SqliteStore({ file: path.join(dir, IMPORT_FILE) });
    leftover.putRaw("accounts", [{ _id: "ghost" }]);
    leftover.putRaw("chats", [{ _id: "ghost-chat" }]);
    await leftover.close();
    await writeFile(path.join(dir, `${IMPORT_FILE}-wal`), "stale");
    const { log, logged } = recorder();
    assert.equal(await importNedbDataDir(dir, log), "imported");
    assert.match(logged.warn.join("\n"), /an unfinished import was removed; starting over/);
    await withStore(dir, async (store) => {
      assert.deepEqual(await store.collection("accounts").find({}), [{ _id: "real" }]);
      assert.deepEqual(await store.collectionNames(), ["accounts"]);
    });
    assert.deepEqual((await readdir(dir)).sort(), [DATABASE_FILE, today()].sort());
  });
});

describe("an import killed halfway", () => {
  const DOCS = 200_000;
  const UPDATES = 50_000;
  const TOMBSTONES = 50_000;

  /** 300,000 lines: documents, then updates of the first ones, then tombstones of the last ones. */
  async function largeFile(file: string): Promise<void> {
    const parts: string[] = [];
    const pad = "x".repeat(200);
    for (let i = 0; i < DOCS; i++) parts.push(line({ _id: `d${i}`, n: i, v: 0, at: { $$date: i }, pad }));
    for (let i = 0; i < UPDATES; i++) parts.push(line({ _id: `d${i}`, n: i, v: 1, at: { $$date: i }, pad }));
    for (let i = DOCS - TOMBSTONES; i < DOCS; i++) parts.push(line({ $$deleted: true, _id: `d${i}` }));
    await writeFile(file, `${parts.join("\n")}\n`);
  }

  test("the next start deletes what it wrote and imports every line exactly once", async () => {
    const dir = await tempDir();
    const file = path.join(dir, "messages.db");
    await largeFile(file);
    const original = await stat(file);

    const script = `
      const { importNedbDataDir } = await import(${JSON.stringify(pathToFileURL(IMPORTER).href)});
      const log = { info: (m) => console.log(m), warn: (m) => console.log(m) };
      await importNedbDataDir(${JSON.stringify(dir)}, log);
      console.log("finished");
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.once("exit", (code, signal) => resolve(signal ?? code)),
    );
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("messages.db: 50000 lines read")) child.kill("SIGKILL");
    });
    assert.equal(await exited, "SIGKILL");
    assert.doesNotMatch(output, /finished|done/);
    assert.ok((await stat(path.join(dir, IMPORT_FILE))).size > 0, "the killed import had written");
    assert.equal(existsSync(path.join(dir, DATABASE_FILE)), false);
    assert.deepEqual(await stat(file).then((s) => [s.size, s.mtimeMs]), [original.size, original.mtimeMs]);

    const { log, logged } = recorder();
    assert.equal(await importNedbDataDir(dir, log), "imported");
    assert.ok(logged.warn.some((msg) => msg.includes("an unfinished import was removed")));
    const progress = logged.info.filter((msg) => /messages\.db: \d+ lines read$/.test(msg));
    assert.deepEqual(
      progress.map((msg) => Number(/(\d+) lines read/.exec(msg)?.[1])),
      [50_000, 100_000, 150_000, 200_000, 250_000, 300_000],
    );
    assert.ok(
      logged.info.some((msg) => msg.includes("messages.db done: 300000 lines read, 150000 documents kept")),
    );
    await withStore(dir, async (store) => {
      const messages = store.collection<Doc & { n: number; v: number; at: Date }>("messages");
      assert.equal(await messages.count({}), DOCS - TOMBSTONES);
      assert.equal(await messages.count({ v: 1 }), UPDATES);
      assert.equal(await messages.count({ v: 0 }), DOCS - TOMBSTONES - UPDATES);
      assert.equal(await messages.findOne({ _id: `d${DOCS - TOMBSTONES}` }), null);
      const last = await messages.findOne({ _id: `d${DOCS - TOMBSTONES - 1}` });
      assert.equal(last?.n, DOCS - TOMBSTONES - 1);
      assert.deepEqual(last?.at, new Date(DOCS - TOMBSTONES - 1));
    });
    assert.deepEqual((await readdir(dir)).sort(), [DATABASE_FILE, today()].sort());
    assert.equal((await stat(path.join(dir, today(), "messages.db"))).size, original.size);
  });
});
