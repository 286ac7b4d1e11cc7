import assert from "node:assert/strict";
import { test } from "node:test";
import type { Context } from "moleculer";
import { PublicProfiles } from "../../../gateway/public-profiles.ts";

type Next = (ctx: Context) => Promise<unknown>;

/** The remote `profile.get` as the middleware wraps it, over a fake node that counts its calls. */
function wrapped(profiles: PublicProfiles, answer: (params: Record<string, unknown>) => Promise<unknown>) {
  const calls: Record<string, unknown>[] = [];
  const next: Next = (ctx) => {
    calls.push(ctx.params as Record<string, unknown>);
    return answer(ctx.params as Record<string, unknown>);
  };
  const hook = (profiles.middleware() as unknown as { remoteAction: (n: Next, a: { name: string }) => Next })
    .remoteAction;
  const call = hook(next, { name: "profile.get" });
  const ask = (params: Record<string, unknown>, options: { nodeID?: string } = {}) =>
    call({ params, options } as unknown as Context);
  return { calls, ask, hook, next };
}

const profile = (id: string, displayName = "Ann") => ({ id, username: "ann", displayName });

test("a profile read once is answered from the copy; lookups are counted", async () => {
  const lookups: boolean[] = [];
  const profiles = new PublicProfiles({ ttlMs: 60_000, onLookup: (hit) => lookups.push(hit) });
  const { calls, ask } = wrapped(profiles, async (p) => profile(String(p.id)));
  assert.deepEqual(await ask({ id: "u1" }), profile("u1"));
  assert.deepEqual(await ask({ id: "u1" }), profile("u1"));
  assert.equal(calls.length, 1);
  assert.deepEqual(lookups, [false, true]);
});

test("params other than exactly { id }, and calls addressed to a node, always go to the profile node", async () => {
  const profiles = new PublicProfiles({ ttlMs: 60_000 });
  const { calls, ask } = wrapped(profiles, async (p) => profile(String(p.id)));
  await ask({ id: "u1" });
  await ask({ id: "u1", extra: "1" });
  await ask({ id: "u1", extra: "1" });
  await ask({ id: 7 });
  await ask({ id: "u1" }, { nodeID: "profile-2" });
  assert.deepEqual(calls, [
    { id: "u1" },
    { id: "u1", extra: "1" },
    { id: "u1", extra: "1" },
    { id: 7 },
    { id: "u1" },
  ]);
});

test("a drop makes the next read ask again; a read that a drop overtook is not kept", async () => {
  const profiles = new PublicProfiles({ ttlMs: 60_000 });
  let name = "Ann";
  let release: () => void = () => {};
  let hold = false;
  const { calls, ask } = wrapped(profiles, async (p) => {
    const answer = profile(String(p.id), name);
    if (hold) await new Promise<void>((resolve) => (release = resolve));
    return answer;
  });
  await ask({ id: "u1" });
  name = "Bea";
  profiles.drop(["u1"]);
  assert.equal(((await ask({ id: "u1" })) as { displayName: string }).displayName, "Bea");

  // A slow read of the old name, overtaken by a drop: answered, but not kept.
  profiles.drop(["u1"]);
  hold = true;
  const slow = ask({ id: "u1" });
  await new Promise((resolve) => setImmediate(resolve));
  name = "Cy";
  profiles.drop(["u1"]);
  release();
  assert.equal(((await slow) as { displayName: string }).displayName, "Bea");
  hold = false;
  assert.equal(((await ask({ id: "u1" })) as { displayName: string }).displayName, "Cy");
  assert.equal(calls.length, 4);
});

test("a failed read is not kept, and the error reaches the caller", async () => {
  const profiles = new PublicProfiles({ ttlMs: 60_000 });
  let fail = true;
  const { calls, ask } = wrapped(profiles, async (p) => {
    if (fail) throw Object.assign(new Error("User not found"), { code: 404 });
    return profile(String(p.id));
  });
  await assert.rejects(ask({ id: "u1" }), /User not found/);
  fail = false;
  assert.deepEqual(await ask({ id: "u1" }), profile("u1"));
  assert.equal(calls.length, 2);
});

test("other actions, and a lifetime of 0, are left as they are", async () => {
  const kept = new PublicProfiles({ ttlMs: 60_000 });
  const off = new PublicProfiles({ ttlMs: 0 });
  const { hook, next } = wrapped(kept, async () => null);
  assert.equal(hook(next, { name: "profile.search" }), next);
  const { hook: offHook, next: offNext } = wrapped(off, async () => null);
  assert.equal(offHook(offNext, { name: "profile.get" }), offNext);
});
