/** The hashing admission gate: slots, a bounded foreseen wait, and an immediate, counted 503 beyond it. */
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { describe, test } from "node:test";
import { createBrokerOptions } from "../../../../broker.config.ts";
import { toHttpError } from "../../../../gateway/error-mapping.ts";
import { hashSlotsDefault, loadConfig } from "../../../../lib/config.ts";
import { HashAdmission, HashingBusyError } from "../../../../services/auth/hash-admission.ts";

/** A hash the test finishes by hand. */
function pending() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return { task: () => done, finish };
}

function gate(overrides: Partial<ConstructorParameters<typeof HashAdmission>[0]> = {}) {
  let clock = 0;
  let shed = 0;
  const queues: number[] = [];
  const admission = new HashAdmission({
    slots: 2,
    maxWaitMs: 100,
    maxQueue: 100,
    initialHashMs: 40,
    onShed: () => {
      shed += 1;
    },
    onQueue: (n) => queues.push(n),
    now: () => clock,
    ...overrides,
  });
  return {
    admission,
    advance: (ms: number) => {
      clock += ms;
    },
    shed: () => shed,
    queues,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("HashAdmission", () => {
  test("runs at most `slots` hashes at once and lets the others wait in order", async () => {
    const { admission } = gate();
    const hashes = Array.from({ length: 4 }, pending);
    const order: number[] = [];
    const runs = hashes.map((h, i) =>
      admission.run(async () => {
        order.push(i);
        await h.task();
      }),
    );
    await settle();
    assert.deepEqual(order, [0, 1]);
    assert.equal(admission.inFlight, 2);
    assert.equal(admission.queued, 2);
    hashes[1]?.finish();
    await settle();
    assert.deepEqual(order, [0, 1, 2]);
    hashes[0]?.finish();
    hashes[2]?.finish();
    hashes[3]?.finish();
    await Promise.all(runs);
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(admission.inFlight, 0);
    assert.equal(admission.queued, 0);
  });

  test("a request whose foreseen wait passes maxWaitMs is refused while every slot is still busy, and counted", async () => {
    // 2 slots of 40 ms: the n-th in line waits about n × 20 ms, so five wait (100 ms) and the sixth is refused.
    const { admission, shed, queues } = gate();
    const hashes = Array.from({ length: 8 }, pending);
    const runs = hashes.map((h) =>
      admission.run(h.task).then(
        () => "done",
        (err: unknown) => err,
      ),
    );
    await settle();
    assert.equal(admission.inFlight, 2);
    assert.equal(admission.queued, 5, "2 running, 5 waiting (5 × 20 ms <= 100 ms), the 8th refused");
    // Nothing has finished, yet the refusal is already answered.
    const refused = await Promise.race([runs[7], settle().then(() => "still waiting")]);
    assert.ok(refused instanceof HashingBusyError, `refused at once, got ${String(refused)}`);
    assert.equal(refused.code, 503);
    assert.equal(refused.type, "HASHING_BUSY");
    assert.equal(refused.retryable, true);
    assert.ok((refused.data as { retryAfter: number }).retryAfter >= 1);
    assert.equal(shed(), 1);
    assert.equal(Math.max(...queues), 5);
    for (const h of hashes) h.finish();
    assert.deepEqual((await Promise.all(runs)).slice(0, 7), Array(7).fill("done"));
  });

  test("the foreseen wait follows the hash's own time: the shortest recent duration", async () => {
    const { admission, advance } = gate({ maxWaitMs: 1_000 });
    assert.equal(admission.hashTimeMs, 40, "the guess until one is measured");
    await admission.calibrate(async () => advance(200));
    assert.equal(admission.hashTimeMs, 200);
    const timed = async (ms: number) =>
      admission.run(async () => {
        advance(ms);
      });
    await timed(60);
    assert.equal(admission.hashTimeMs, 60, "a faster hash lowers it at once");
    // Hashes slowed by a busy event loop do not raise it while a fast one is among the last 32.
    for (let i = 0; i < 30; i++) await timed(500);
    assert.equal(admission.hashTimeMs, 60);
    // Once every recent one is slow, the machine is: the estimate follows.
    for (let i = 0; i < 2; i++) await timed(500);
    assert.equal(admission.hashTimeMs, 500);
    const hogs = [pending(), pending()];
    const held = hogs.map((h) => admission.run(h.task));
    await settle();
    assert.equal(admission.foreseenWaitMs(), 250, "one in line behind 2 slots of 500 ms");
    for (const h of hogs) h.finish();
    await Promise.all(held);
  });

  test("check() refuses, and counts, exactly when run() would", async () => {
    const { admission, shed } = gate({ slots: 1, maxWaitMs: 40 });
    admission.check();
    const first = pending();
    const running = admission.run(first.task);
    admission.check(); // one slot busy, the next would wait 40 ms: still admitted
    const second = pending();
    const waiting = admission.run(second.task);
    await settle();
    assert.throws(() => admission.check(), HashingBusyError);
    await assert.rejects(
      admission.run(async () => undefined),
      HashingBusyError,
    );
    assert.equal(shed(), 2);
    first.finish();
    second.finish();
    await Promise.all([running, waiting]);
    admission.check();
  });

  test("maxQueue bounds the line whatever the foreseen wait", async () => {
    const { admission, shed } = gate({ maxWaitMs: 60_000, maxQueue: 1 });
    const hashes = Array.from({ length: 3 }, pending);
    const runs = hashes.map((h) => admission.run(h.task));
    await assert.rejects(
      admission.run(async () => undefined),
      HashingBusyError,
    );
    assert.equal(shed(), 1);
    for (const h of hashes) h.finish();
    await Promise.all(runs);
  });

  test("a task that throws frees its slot", async () => {
    const { admission } = gate({ slots: 1 });
    await assert.rejects(
      admission.run(async () => {
        throw new Error("argon2 failed");
      }),
      /argon2 failed/,
    );
    assert.equal(await admission.run(async () => 7), 7);
    assert.equal(admission.inFlight, 0);
  });

  test("the refusal is a 503 with Retry-After on the wire and does not open a circuit", () => {
    const http = toHttpError(new HashingBusyError(2));
    assert.equal(http.status, 503);
    assert.equal(http.headers["Retry-After"], "2");
    const check = createBrokerOptions(loadConfig({})).circuitBreaker?.check as (err: Error) => boolean;
    assert.equal(check(new HashingBusyError(1)), false);
    assert.equal(check(Object.assign(new Error("down"), { code: 503, type: "SERVICE_UNAVAILABLE" })), true);
  });

  test("slots default to the libuv pool less one, and no more than the cores", () => {
    const cores = availableParallelism();
    assert.equal(hashSlotsDefault(1), 1);
    assert.equal(hashSlotsDefault(4), Math.min(3, cores));
    assert.equal(hashSlotsDefault(64), Math.min(63, cores));
    assert.equal(loadConfig({ UV_THREADPOOL_SIZE: "1" }).hashing.concurrency, 1);
    assert.equal(loadConfig({ HASH_CONCURRENCY: "5" }).hashing.concurrency, 5);
  });
});
