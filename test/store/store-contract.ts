/**
 * The behaviour every Store backend must share, as one suite run against each of them
 * (store.test.ts). Each test works in a collection of its own.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DuplicateKeyError } from "../../lib/errors.ts";
import type { Collection, Doc, IndexSpec, Store } from "../../lib/store/types.ts";

interface Item extends Doc {
  n?: number;
  name?: string;
  at?: Date;
  tags?: string[];
  nested?: { x: number };
  note?: string | null;
  usedAt?: Date;
  seq?: number;
}

interface Account extends Doc {
  email: string;
  username: string;
  usernameLower: string;
}

interface Message extends Doc {
  chatId: string;
  seq: number;
}

const ACCOUNT_INDEXES: IndexSpec[] = [
  { name: "email_unique", fields: { email: 1 }, unique: true },
  { name: "username_unique", fields: { usernameLower: 1 }, unique: true },
];

export function storeContract(name: string, open: () => Promise<Store>, cleanup: () => Promise<void>): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let collections = 0;
    const fresh = <T extends Doc>(): Collection<T> => store.collection<T>(`contract_${++collections}`);

    before(async () => {
      store = await open();
    });

    after(async () => {
      await store?.close();
      await cleanup();
    });

    test("ping resolves", async () => {
      await store.ping();
    });

    test("insertOne and findOne round-trip a document, Dates included", async () => {
      const items = fresh<Item>();
      const doc: Item = {
        _id: "a",
        name: "first",
        n: 1.5,
        at: new Date("2024-05-06T07:08:09.123Z"),
        tags: ["x", "y"],
        nested: { x: 2 },
        note: null,
      };
      assert.deepEqual(await items.insertOne(doc), doc);
      const found = await items.findOne({ _id: "a" });
      assert.deepEqual(found, doc);
      assert.ok(found?.at instanceof Date);
      assert.equal(await items.findOne({ _id: "missing" }), null);
    });

    test("findByIds answers in the order of the ids, null where there is no such document", async () => {
      const items = fresh<Item>();
      const at = new Date("2024-05-06T07:08:09.123Z");
      await items.insertMany([
        { _id: "a", n: 1, at },
        { _id: "b", n: 2 },
        { _id: "c", n: 3 },
      ]);
      assert.deepEqual(await items.findByIds(["c", "missing", "a", "a"]), [
        { _id: "c", n: 3 },
        null,
        { _id: "a", n: 1, at },
        { _id: "a", n: 1, at },
      ]);
      assert.deepEqual(await items.findByIds([]), []);
    });

    test("a unique index violation throws DuplicateKeyError naming the index", async () => {
      const accounts = fresh<Account>();
      await accounts.ensureIndexes(ACCOUNT_INDEXES);
      await accounts.insertOne({ _id: "1", email: "a@x.io", username: "Ann", usernameLower: "ann" });
      await assertDuplicate(
        accounts.insertOne({ _id: "2", email: "a@x.io", username: "Bob", usernameLower: "bob" }),
        "email_unique",
      );
      await assertDuplicate(
        accounts.insertOne({ _id: "3", email: "b@x.io", username: "ANN", usernameLower: "ann" }),
        "username_unique",
      );
      await assertDuplicate(
        accounts.insertOne({ _id: "1", email: "c@x.io", username: "Cy", usernameLower: "cy" }),
        "_id_",
      );
      assert.equal(await accounts.count({}), 1);
    });

    test("an insert asked not to identify the index still throws DuplicateKeyError and stores nothing", async () => {
      const accounts = fresh<Account>();
      await accounts.ensureIndexes(ACCOUNT_INDEXES);
      await accounts.insertOne({ _id: "1", email: "a@x.io", username: "Ann", usernameLower: "ann" });
      const quick = { identifyIndex: false };
      const second = { _id: "2", email: "a@x.io", username: "Bob", usernameLower: "bob" };
      await assert.rejects(accounts.insertOne(second, quick), DuplicateKeyError);
      await assert.rejects(
        accounts.insertOne({ ...second, _id: "1", email: "z@x.io" }, quick),
        DuplicateKeyError,
      );
      assert.equal(await accounts.count({}), 1);
      assert.deepEqual(await accounts.insertOne({ ...second, email: "b@x.io" }, quick), {
        ...second,
        email: "b@x.io",
      });
    });

    test("an update that breaks a unique index throws DuplicateKeyError and changes nothing", async () => {
      const accounts = fresh<Account>();
      await accounts.ensureIndexes(ACCOUNT_INDEXES);
      await accounts.insertOne({ _id: "1", email: "a@x.io", username: "Ann", usernameLower: "ann" });
      await accounts.insertOne({ _id: "2", email: "b@x.io", username: "Bob", usernameLower: "bob" });
      await assertDuplicate(
        accounts.updateOne({ _id: "2" }, { $set: { usernameLower: "ann" } }),
        "username_unique",
      );
      await assertDuplicate(
        accounts.findOneAndUpdate({ _id: "2" }, { $set: { email: "a@x.io" } }),
        "email_unique",
      );
      assert.deepEqual(await accounts.findOne({ _id: "2" }), {
        _id: "2",
        email: "b@x.io",
        username: "Bob",
        usernameLower: "bob",
      });
    });

    test("a compound unique index rejects only the same combination", async () => {
      const messages = fresh<Message>();
      await messages.ensureIndexes([{ name: "chat_seq", fields: { chatId: 1, seq: 1 }, unique: true }]);
      await messages.insertOne({ _id: "m1", chatId: "c1", seq: 1 });
      await messages.insertOne({ _id: "m2", chatId: "c1", seq: 2 });
      await messages.insertOne({ _id: "m3", chatId: "c2", seq: 1 });
      await assertDuplicate(messages.insertOne({ _id: "m4", chatId: "c1", seq: 1 }), "chat_seq");
      assert.equal(await messages.count({ chatId: "c1" }), 2);
    });

    test("insertMany stores a list in one call and resolves how many it stored", async () => {
      const messages = fresh<Message>();
      await messages.ensureIndexes([{ name: "chat_seq", fields: { chatId: 1, seq: 1 }, unique: true }]);
      assert.equal(await messages.insertMany([]), 0);
      const docs = Array.from({ length: 30 }, (_, i) => ({ _id: `m${i}`, chatId: `c${i % 3}`, seq: i }));
      assert.equal(await messages.insertMany(docs), 30);
      assert.equal(await messages.count({}), 30);
      assert.deepEqual(await messages.findOne({ _id: "m7" }), { _id: "m7", chatId: "c1", seq: 7 });
    });

    test("insertMany stops at the first document a unique index refuses, having stored those before it", async () => {
      const messages = fresh<Message>();
      await messages.ensureIndexes([{ name: "chat_seq", fields: { chatId: 1, seq: 1 }, unique: true }]);
      await messages.insertOne({ _id: "taken", chatId: "c1", seq: 1 });
      await messages.insertOne({ _id: "x", chatId: "c9", seq: 9 });
      // Refused by _id.
      const byId = [
        { _id: "a1", chatId: "c2", seq: 1 },
        { _id: "a2", chatId: "c2", seq: 2 },
        { _id: "taken", chatId: "c2", seq: 3 },
        { _id: "a4", chatId: "c2", seq: 4 },
      ];
      assert.equal(await messages.insertMany(byId), 2);
      assert.deepEqual(
        (await messages.find({ chatId: "c2" }, { sort: { seq: 1 } })).map((m) => m._id),
        ["a1", "a2"],
      );
      // Refused by the compound unique index.
      const bySeq = [
        { _id: "b1", chatId: "c3", seq: 1 },
        { _id: "b2", chatId: "c1", seq: 1 },
        { _id: "b3", chatId: "c3", seq: 2 },
      ];
      assert.equal(await messages.insertMany(bySeq), 1);
      assert.equal(await messages.findOne({ _id: "b1" }).then((m) => m?.seq), 1);
      assert.equal(await messages.findOne({ _id: "b2" }), null);
      assert.equal(await messages.findOne({ _id: "b3" }), null);
      // Refused at the first position: nothing stored.
      assert.equal(
        await messages.insertMany([
          { _id: "x", chatId: "c4", seq: 1 },
          { _id: "c", chatId: "c4", seq: 2 },
        ]),
        0,
      );
      assert.equal(await messages.count({ chatId: "c4" }), 0);
      assert.equal(await messages.count({}), 5);
    });

    test("case-insensitive uniqueness through a lower-cased field", async () => {
      const accounts = fresh<Account>();
      await accounts.ensureIndexes(ACCOUNT_INDEXES);
      await accounts.insertOne({ _id: "1", email: "a@x.io", username: "Alice", usernameLower: "alice" });
      await assertDuplicate(
        accounts.insertOne({ _id: "2", email: "b@x.io", username: "ALICE", usernameLower: "alice" }),
        "username_unique",
      );
      const found = await accounts.findOne({ usernameLower: "aLiCe".toLowerCase() });
      assert.equal(found?.username, "Alice");
    });

    test("a sparse unique index ignores documents without the field", async () => {
      const items = fresh<Item>();
      await items.ensureIndexes([{ name: "name_sparse", fields: { name: 1 }, unique: true, sparse: true }]);
      await items.insertOne({ _id: "1" });
      await items.insertOne({ _id: "2" });
      await items.insertOne({ _id: "3", name: "x" });
      await assertDuplicate(items.insertOne({ _id: "4", name: "x" }), "name_sparse");
    });

    test("a retired index is dropped where it exists, and retiring one that never existed is fine", async () => {
      const messages = fresh<Message>();
      const seqIndex: IndexSpec = { name: "chat_seq", fields: { chatId: 1, seq: 1 }, unique: true };
      await messages.ensureIndexes([seqIndex]);
      await messages.insertOne({ _id: "m1", chatId: "c1", seq: 1 });
      await assertDuplicate(messages.insertOne({ _id: "m2", chatId: "c1", seq: 1 }), "chat_seq");
      await messages.ensureIndexes([{ ...seqIndex, retired: true }]);
      await messages.ensureIndexes([{ ...seqIndex, retired: true }]);
      await messages.insertOne({ _id: "m2", chatId: "c1", seq: 1 });
      assert.equal(await messages.count({ chatId: "c1", seq: 1 }), 2);
      const untouched = fresh<Message>();
      await untouched.ensureIndexes([{ ...seqIndex, retired: true }]);
      await untouched.insertOne({ _id: "m1", chatId: "c1", seq: 1 });
      await untouched.insertOne({ _id: "m2", chatId: "c1", seq: 1 });
      assert.equal(await untouched.count({}), 2);
    });

    test("ensureIndexes is idempotent and accepts TTL indexes", async () => {
      const items = fresh<Item>();
      const indexes: IndexSpec[] = [
        { name: "at_ttl", fields: { at: 1 }, expireAfterSeconds: 3600 },
        { name: "n_desc", fields: { n: -1 } },
      ];
      await items.ensureIndexes(indexes);
      await items.ensureIndexes(indexes);
      await items.insertOne({ _id: "1", at: new Date() });
      assert.equal(await items.count({}), 1);
    });

    test("$prefix is an anchored, case-sensitive prefix with regex characters taken literally", async () => {
      const items = fresh<Item>();
      for (const name of ["a.b", "a.bc", "axb", "A.b", "xa.b", "(x", "[y", "a*", "a\\b", "$z"]) {
        await items.insertOne({ _id: name, name });
      }
      const names = async (prefix: string) =>
        (await items.find({ name: { $prefix: prefix } }, { sort: { name: 1 } })).map((item) => item.name);
      assert.deepEqual(await names("a.b"), ["a.b", "a.bc"]);
      assert.deepEqual(await names("("), ["(x"]);
      assert.deepEqual(await names("["), ["[y"]);
      assert.deepEqual(await names("a*"), ["a*"]);
      assert.deepEqual(await names("a\\"), ["a\\b"]);
      assert.deepEqual(await names("$"), ["$z"]);
      assert.deepEqual(await names("q"), []);
      const page = await items.find({ name: { $prefix: "a", $gt: "a.b" } }, { sort: { name: 1 } });
      assert.deepEqual(
        page.map((item) => item.name),
        ["a.bc", "a\\b", "axb"],
      );
    });

    test("comparison operators: $eq $ne $gt $gte $lt $lte $in $exists", async () => {
      const items = fresh<Item>();
      const base = Date.parse("2024-01-01T00:00:00Z");
      for (let n = 1; n <= 5; n++) await items.insertOne({ _id: `i${n}`, n, at: new Date(base + n * 1000) });
      await items.insertOne({ _id: "none" });
      const ids = async (filter: Record<string, unknown>) =>
        (await items.find(filter, { sort: { _id: 1 } })).map((item) => item._id);
      assert.deepEqual(await ids({ n: { $eq: 2 } }), ["i2"]);
      assert.deepEqual(await ids({ n: { $gt: 3 } }), ["i4", "i5"]);
      assert.deepEqual(await ids({ n: { $gte: 3, $lt: 5 } }), ["i3", "i4"]);
      assert.deepEqual(await ids({ n: { $lte: 1 } }), ["i1"]);
      assert.deepEqual(await ids({ at: { $lt: new Date(base + 2500) } }), ["i1", "i2"]);
      assert.deepEqual(await ids({ n: { $in: [1, 5, 9] } }), ["i1", "i5"]);
      assert.deepEqual(await ids({ _id: { $in: [] } }), []);
      assert.deepEqual(await ids({ n: { $ne: 2 } }), ["i1", "i3", "i4", "i5", "none"]);
      assert.deepEqual(await ids({ n: { $exists: false } }), ["none"]);
      assert.equal((await ids({ n: { $exists: true } })).length, 5);
      assert.deepEqual(await ids({ n: 4, _id: "i4" }), ["i4"]);
    });

    test("find sorts, skips and limits", async () => {
      const items = fresh<Item>();
      for (let n = 1; n <= 10; n++) await items.insertOne({ _id: `i${n}`, n, name: n % 2 ? "odd" : "even" });
      const page = await items.find({}, { sort: { n: -1 }, skip: 2, limit: 3 });
      assert.deepEqual(
        page.map((item) => item.n),
        [8, 7, 6],
      );
      const byTwo = await items.find({}, { sort: { name: 1, n: 1 }, limit: 4 });
      assert.deepEqual(
        byTwo.map((item) => item.n),
        [2, 4, 6, 8],
      );
      assert.equal((await items.find({ name: "odd" })).length, 5);
    });

    test("an owner's documents page by (date, _id) from a date with skip, on an index of both", async () => {
      const items = fresh<Item & { owner: string }>();
      await items.ensureIndexes([{ name: "owner_at", fields: { owner: 1, at: 1 } }]);
      const base = Date.parse("2024-01-01T00:00:00Z");
      // Three share a time: a page that ends among them resumes by skipping those it gave.
      const times = [3, 1, 2, 2, 2, 4];
      for (const [i, t] of times.entries()) {
        await items.insertOne({ _id: `d${i}`, owner: "a", at: new Date(base + t * 1000) });
        await items.insertOne({ _id: `o${i}`, owner: "b", at: new Date(base + t * 1000) });
      }
      const page = async (from: Date | undefined, skip: number, limit: number) =>
        (
          await items.find(from ? { owner: "a", at: { $gte: from } } : { owner: "a" }, {
            sort: { at: 1, _id: 1 },
            skip,
            limit,
          })
        ).map((d) => d._id);
      assert.deepEqual(await page(undefined, 0, 3), ["d1", "d2", "d3"]);
      assert.deepEqual(await page(new Date(base + 2000), 2, 3), ["d4", "d0", "d5"]);
      assert.deepEqual(await page(new Date(base + 4000), 1, 3), []);
    });

    test("$exists with $ne of an empty array finds documents whose array holds something", async () => {
      const items = fresh<Item & { files?: { id: string }[] }>();
      await items.insertOne({ _id: "full", files: [{ id: "f1" }] });
      await items.insertOne({ _id: "two", files: [{ id: "f2" }, { id: "f3" }] });
      await items.insertOne({ _id: "empty", files: [] });
      await items.insertOne({ _id: "missing" });
      const filter = { files: { $exists: true, $ne: [] } };
      assert.deepEqual(
        (await items.find(filter, { sort: { _id: 1 } })).map((d) => d._id),
        ["full", "two"],
      );
      assert.equal(await items.updateMany({ _id: { $in: ["full", "two"] } }, { $set: { files: [] } }), 2);
      assert.deepEqual(await items.find(filter), []);
    });

    test("an arrayPrefix index pages one element's documents in the second field's order, through every write", async () => {
      const items = fresh<Item>();
      await items.ensureIndexes([{ name: "tags_name", fields: { tags: 1, name: -1 }, arrayPrefix: true }]);
      // Written before and after the index exists, changed, removed, and one with the tag as a scalar.
      for (let n = 1; n <= 30; n++) {
        await items.insertOne({
          _id: `i${n}`,
          n,
          name: `k${String(n).padStart(2, "0")}`,
          tags: n % 3 ? ["x", "y"] : ["y"],
        });
      }
      const other = fresh<Item>();
      await other.insertOne({ _id: "o1", name: "k99", tags: ["x"] });
      await other.ensureIndexes([{ name: "tags_name", fields: { tags: 1, name: -1 }, arrayPrefix: true }]);
      await items.ensureIndexes([{ name: "tags_name", fields: { tags: 1, name: -1 }, arrayPrefix: true }]);
      await items.updateOne({ _id: "i2" }, { $set: { name: "k50" } });
      await items.updateOne({ _id: "i4" }, { $set: { tags: ["y"] } });
      await items.updateOne({ _id: "i3" }, { $set: { tags: ["x", "x"] } });
      await items.deleteOne({ _id: "i5" });
      await items.findOneAndUpdate({ _id: "i7" }, { $set: { name: "k00" } });
      const all = await items.find({});
      const withX = (keep: (i: Item) => boolean, dir: 1 | -1) =>
        all
          .filter((i) => i.tags?.includes("x") && keep(i))
          .sort((a, b) => ((a.name ?? "") < (b.name ?? "") ? -dir : dir))
          .map((i) => i._id);
      assert.deepEqual(
        (await items.find({ tags: "x" }, { sort: { name: -1 }, limit: 5 })).map((i) => i._id),
        withX(() => true, -1).slice(0, 5),
      );
      assert.deepEqual(
        (await items.find({ tags: "x", name: { $lt: "k20" } }, { sort: { name: -1 }, limit: 3 })).map(
          (i) => i._id,
        ),
        withX((i) => (i.name ?? "") < "k20", -1).slice(0, 3),
      );
      // Other filter fields still apply, and ascending order walks the other way.
      assert.deepEqual(
        (await items.find({ tags: "x", n: { $gt: 20 } }, { sort: { name: 1 } })).map((i) => i._id),
        withX((i) => (i.n ?? 0) > 20, 1),
      );
      // Every document once (i3 holds the tag twice), none that lost the tag (i4) or went (i5).
      assert.deepEqual(
        (await items.find({ tags: "x" }, { sort: { name: 1 } })).map((i) => i._id),
        withX(() => true, 1),
      );
      // A Date second field, bounded by a Date.
      const dated = fresh<Item>();
      await dated.ensureIndexes([{ name: "tags_at", fields: { tags: 1, at: -1 }, arrayPrefix: true }]);
      for (let n = 1; n <= 6; n++)
        await dated.insertOne({ _id: `d${n}`, tags: ["x"], at: new Date(n * 1000) });
      assert.deepEqual(
        (await dated.find({ tags: "x", at: { $gt: new Date(3000) } }, { sort: { at: -1 } })).map(
          (i) => i._id,
        ),
        ["d6", "d5", "d4"],
      );
      assert.deepEqual(
        (await dated.find({ tags: "x", at: { $lte: new Date(2000) } }, { sort: { at: 1 } })).map((i) => i.at),
        [new Date(1000), new Date(2000)],
      );
      assert.deepEqual(
        (await other.find({ tags: "x" }, { sort: { name: -1 } })).map((i) => i._id),
        ["o1"],
      );
    });

    test("count counts matching documents", async () => {
      const items = fresh<Item>();
      for (let n = 1; n <= 4; n++) await items.insertOne({ _id: `i${n}`, n });
      assert.equal(await items.count({}), 4);
      assert.equal(await items.count({ n: { $gt: 2 } }), 2);
      assert.equal(await items.count({ n: 99 }), 0);
    });

    test("updateOne and updateMany resolve the matched count and apply $set $unset $inc", async () => {
      const items = fresh<Item>();
      await items.insertOne({ _id: "1", n: 1, name: "a", note: "x" });
      await items.insertOne({ _id: "2", n: 2, name: "a" });
      await items.insertOne({ _id: "3", n: 3, name: "b" });
      assert.equal(await items.updateOne({ _id: "nope" }, { $set: { n: 9 } }), 0);
      assert.equal(
        await items.updateOne({ _id: "1" }, { $set: { name: "z" }, $unset: { note: true }, $inc: { n: 10 } }),
        1,
      );
      assert.deepEqual(await items.findOne({ _id: "1" }), { _id: "1", n: 11, name: "z" });
      assert.equal(await items.updateOne({ _id: "3" }, { $inc: { seq: 1 } }), 1);
      assert.equal((await items.findOne({ _id: "3" }))?.seq, 1);
      assert.equal(await items.updateMany({ name: "a" }, { $set: { note: "many" } }), 1);
      assert.equal(await items.updateMany({ n: { $lt: 5 } }, { $set: { note: "all" } }), 2);
      assert.equal(await items.count({ note: "all" }), 2);
    });

    test("a single-writer updateOne applies the same update and matches by the whole filter", async () => {
      const items = fresh<Item>();
      await items.insertOne({ _id: "1", n: 1, name: "pending" });
      const single = { singleWriter: true };
      assert.equal(await items.updateOne({ _id: "1", name: "active" }, { $set: { n: 5 } }, single), 0);
      assert.equal(
        await items.updateOne({ _id: "1", name: "pending" }, { $set: { name: "active" } }, single),
        1,
      );
      assert.deepEqual(await items.findOne({ _id: "1" }), { _id: "1", n: 1, name: "active" });
      assert.equal(await items.updateOne({ _id: "1", name: "pending" }, { $set: { n: 9 } }, single), 0);
      await assert.rejects(items.updateOne({ _id: undefined }, { $set: { n: 2 } }, single), TypeError);
    });

    test("$set of an undefined value leaves the field alone", async () => {
      const items = fresh<Item>();
      await items.insertOne({ _id: "1", name: "kept", n: 1 });
      assert.equal(await items.updateOne({ _id: "1" }, { $set: { name: undefined, n: 2 } }), 1);
      assert.deepEqual(await items.findOne({ _id: "1" }), { _id: "1", name: "kept", n: 2 });
    });

    test("an undefined filter value is refused", async () => {
      const items = fresh<Item>();
      await items.insertOne({ _id: "1" });
      await assert.rejects(items.deleteOne({ _id: undefined }), TypeError);
      assert.equal(await items.count({}), 1);
    });

    test("a conditional update is a compare-and-set: one of 20 concurrent callers wins", async () => {
      const items = fresh<Item>();
      await items.insertOne({ _id: "token" });
      const attempts = Array.from({ length: 20 }, (_, i) =>
        items.updateOne(
          { _id: "token", usedAt: { $exists: false } },
          { $set: { usedAt: new Date(1_000 + i) } },
        ),
      );
      const results = await Promise.all(attempts);
      assert.equal(results.filter((matched) => matched === 1).length, 1);
      const winner = results.indexOf(1);
      assert.deepEqual((await items.findOne({ _id: "token" }))?.usedAt, new Date(1_000 + winner));
    });

    test("findOneAndUpdate with $inc hands 50 concurrent callers 50 distinct values", async () => {
      const counters = fresh<Item>();
      const allocate = () =>
        counters.findOneAndUpdate({ _id: "chat-1" }, { $inc: { seq: 1 } }, { upsert: true });
      const first = await Promise.all(Array.from({ length: 50 }, allocate));
      const seqs = first.map((doc) => doc?.seq ?? 0).sort((a, b) => a - b);
      assert.deepEqual(
        seqs,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      const second = await Promise.all(Array.from({ length: 50 }, allocate));
      assert.equal(new Set(second.map((doc) => doc?.seq)).size, 50);
      assert.equal((await counters.findOne({ _id: "chat-1" }))?.seq, 100);
    });

    test("findOneAndUpdate resolves the document after the update, or null", async () => {
      const items = fresh<Item>();
      await items.insertOne({ _id: "1", n: 1, name: "a" });
      assert.deepEqual(await items.findOneAndUpdate({ _id: "1" }, { $set: { name: "b" }, $inc: { n: 1 } }), {
        _id: "1",
        n: 2,
        name: "b",
      });
      assert.equal(await items.findOneAndUpdate({ _id: "2" }, { $set: { name: "b" } }), null);
      assert.equal(await items.findOneAndUpdate({ _id: "1", name: "a" }, { $set: { name: "c" } }), null);
      assert.equal(await items.count({}), 1);
    });

    test("an upsert inserts the filter's pinned fields plus the update, and only once", async () => {
      const items = fresh<Item>();
      const created = await items.findOneAndUpdate(
        { _id: "u1", name: "pinned", usedAt: { $exists: false } },
        { $set: { note: "set" }, $inc: { n: 5 } },
        { upsert: true },
      );
      assert.deepEqual(created, { _id: "u1", name: "pinned", note: "set", n: 5 });
      assert.deepEqual(await items.findOne({ _id: "u1" }), created);
      const updated = await items.findOneAndUpdate({ _id: "u1" }, { $inc: { n: 1 } }, { upsert: true });
      assert.equal(updated?.n, 6);
      const generated = await items.findOneAndUpdate({ name: "no-id" }, { $set: { n: 1 } }, { upsert: true });
      assert.equal(typeof generated?._id, "string");
      assert.equal(await items.count({}), 2);
    });

    test("deleteOne and deleteMany resolve how many documents they removed", async () => {
      const items = fresh<Item>();
      for (let n = 1; n <= 5; n++) await items.insertOne({ _id: `i${n}`, n });
      assert.equal(await items.deleteOne({ _id: "i1" }), 1);
      assert.equal(await items.deleteOne({ _id: "i1" }), 0);
      assert.equal(await items.deleteOne({ n: { $gt: 1 } }), 1);
      assert.equal(await items.deleteMany({ n: { $gt: 1 } }), 3);
      assert.equal(await items.deleteMany({}), 0);
      assert.equal(await items.count({}), 0);
    });
  });
}

async function assertDuplicate(write: Promise<unknown>, index: string): Promise<void> {
  await assert.rejects(write, (err: unknown) => {
    assert.ok(err instanceof DuplicateKeyError, `expected DuplicateKeyError, got ${String(err)}`);
    assert.equal(err.index, index);
    return true;
  });
}
