import assert from "node:assert/strict";
import { test } from "node:test";
import { PresenceMap } from "../../../../services/chat/presence-map.ts";

const stamp = (version: number, instance = "gw-a-process-1") => ({ instance, version });

test("a gateway's list taken before events already applied does not take those users back", () => {
  const map = new PresenceMap();
  map.online("gw-1", "u1", stamp(1));
  // gw-1 answered its list at version 1, then announced u2 (version 2); the event ran first.
  map.online("gw-1", "u2", stamp(2));
  assert.deepEqual(map.replaceNode("gw-1", ["u1"], stamp(1)), []);
  assert.deepEqual(map.route(["u1", "u2"]), new Map([["gw-1", ["u1", "u2"]]]));
});

test("a list as new as the events replaces what is known of that gateway", () => {
  const map = new PresenceMap();
  map.online("gw-1", "u1", stamp(1));
  map.online("gw-1", "u2", stamp(2));
  assert.deepEqual(map.replaceNode("gw-1", ["u2", "u3"], stamp(2)), ["u1"]);
  assert.deepEqual(map.route(["u1", "u2", "u3"]), new Map([["gw-1", ["u2", "u3"]]]));
  assert.equal(map.isOnline("u1"), false);
});

test("a restarted gateway's list applies, whatever the version its previous process reached", () => {
  const map = new PresenceMap();
  map.online("gw-1", "u1", stamp(40));
  map.replaceNode("gw-1", ["u9"], stamp(0, "gw-a-process-2"));
  assert.deepEqual(map.route(["u1", "u9"]), new Map([["gw-1", ["u9"]]]));
});

test("a gateway that left is forgotten, stamp included", () => {
  const map = new PresenceMap();
  map.online("gw-1", "u1", stamp(5));
  assert.deepEqual(map.dropNode("gw-1"), ["u1"]);
  map.replaceNode("gw-1", ["u2"], stamp(1));
  assert.deepEqual(map.route(["u2"]), new Map([["gw-1", ["u2"]]]));
});

test("events and lists without a stamp (an older gateway) apply as before", () => {
  const map = new PresenceMap();
  map.online("gw-1", "u1");
  map.online("gw-1", "u2");
  assert.deepEqual(map.replaceNode("gw-1", ["u1"]), ["u2"]);
  assert.equal(map.offline("gw-1", "u1", "2026-12-01T00:00:00.000Z"), true);
  assert.equal(map.lastSeenOf("u1"), "2026-12-01T00:00:00.000Z");
});
