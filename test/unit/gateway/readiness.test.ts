/** The gateway's readiness cache: a ready state is answered at once while its renewal runs beside. */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { Readiness } from "../../../gateway/readiness.ts";

/** Checks whose pings the test answers by hand. */
function checks() {
  const pings: Array<{ service: string; ok: () => void; fail: () => void }> = [];
  return {
    pings,
    services: ["auth", "chat"],
    isDiscovered: () => true,
    ping: (service: string) =>
      new Promise<void>((resolve, reject) => {
        pings.push({ service, ok: resolve, fail: () => reject(new Error("down")) });
      }),
    ensureKeys: async () => undefined,
    announced: () => true,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("Readiness", () => {
  beforeEach(() => mock.timers.enable({ apis: ["Date"], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  test("the first state waits for the probe; a ready one is then answered without probing for a second", async () => {
    const c = checks();
    const readiness = new Readiness(c);
    const first = readiness.state();
    await settle();
    assert.equal(c.pings.length, 2);
    for (const p of c.pings.splice(0)) p.ok();
    assert.equal((await first).ready, true);
    assert.equal(readiness.isKnownReady(), true);
    mock.timers.tick(500);
    assert.equal(readiness.isKnownReady(), true);
    assert.equal(c.pings.length, 0, "no probe within the second");
  });

  test("a stale ready state still answers at once while its renewal runs, and a failed renewal ends it", async () => {
    const c = checks();
    const readiness = new Readiness(c);
    const first = readiness.state();
    await settle();
    for (const p of c.pings.splice(0)) p.ok();
    await first;
    mock.timers.tick(1_500);
    assert.equal(readiness.isKnownReady(), true, "answered from the stale state");
    const state = await readiness.state();
    assert.equal(state.ready, true, "state() does not wait for the pings either");
    await settle();
    assert.equal(c.pings.length, 2, "one renewal probe runs, not one per caller");
    c.pings[0]?.fail();
    c.pings[1]?.ok();
    await settle();
    await settle();
    assert.equal(readiness.isKnownReady(), false);
    assert.equal((await readiness.state()).ready, false);
  });

  test("past STALE_MS a ready state is not trusted: callers wait for the probe", async () => {
    const c = checks();
    const readiness = new Readiness(c);
    const first = readiness.state();
    await settle();
    for (const p of c.pings.splice(0)) p.ok();
    await first;
    mock.timers.tick(6_000);
    assert.equal(readiness.isKnownReady(), false);
    let answered = false;
    const waiting = readiness.state().then((s) => {
      answered = true;
      return s;
    });
    await settle();
    assert.equal(answered, false, "waits for the probe");
    for (const p of c.pings.splice(0)) p.ok();
    assert.equal((await waiting).ready, true);
  });
});
