import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkable, matchesFilter, pinnedId } from "../../../../lib/store/id-lookup.ts";

const at = new Date("2026-01-02T03:04:05Z");
const doc = { _id: "a", state: "pending", n: 5, tags: ["x", "y"], at, nested: { k: "v" }, gone: null };

describe("lookups by _id with the rest of the filter checked in memory", () => {
  test("a string _id equality with known operators is pinned; anything else is not", () => {
    assert.equal(pinnedId({ _id: "a", state: "pending" }), "a");
    assert.equal(pinnedId({ _id: "a", n: { $lt: 9, $gte: 1 } }), "a");
    assert.equal(pinnedId({ state: "pending" }), undefined);
    assert.equal(pinnedId({ _id: { $in: ["a"] } }), undefined);
    assert.equal(pinnedId({ _id: "a", $or: [{ n: 1 }] }), undefined);
    assert.equal(pinnedId({ _id: "a", n: { $mod: [2, 0] } }), undefined);
    assert.equal(checkable({ n: { $elemMatch: {} } }), false);
  });

  test("equality, arrays holding the value, nested paths, null and missing fields", () => {
    assert.ok(matchesFilter(doc, { _id: "a", state: "pending" }));
    assert.ok(!matchesFilter(doc, { _id: "a", state: "active" }));
    assert.ok(matchesFilter(doc, { tags: "y" }));
    assert.ok(!matchesFilter(doc, { tags: "z" }));
    assert.ok(matchesFilter(doc, { "nested.k": "v" }));
    assert.ok(matchesFilter(doc, { gone: null, missing: null }));
    assert.ok(matchesFilter(doc, { at: new Date(at.getTime()) }));
  });

  test("$ne, $in, $exists, $regex and ranges on numbers and dates", () => {
    assert.ok(matchesFilter(doc, { state: { $ne: "active" }, tags: { $ne: "z" } }));
    assert.ok(!matchesFilter(doc, { tags: { $ne: "x" } }));
    assert.ok(matchesFilter(doc, { state: { $in: ["active", "pending"] } }));
    assert.ok(matchesFilter(doc, { revokedAt: { $exists: false }, n: { $exists: true } }));
    assert.ok(!matchesFilter(doc, { n: { $exists: false } }));
    assert.ok(matchesFilter(doc, { state: { $regex: "^pen" } }));
    assert.ok(matchesFilter(doc, { n: { $gt: 4, $lte: 5 } }));
    assert.ok(!matchesFilter(doc, { n: { $lt: 5 } }));
    assert.ok(matchesFilter(doc, { at: { $lt: new Date("2027-01-01") } }));
    assert.ok(!matchesFilter(doc, { at: { $gt: new Date("2027-01-01") } }));
    assert.ok(!matchesFilter(doc, { n: { $gt: "4" } }), "values of different kinds never compare");
  });
});
