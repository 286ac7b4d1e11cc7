import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidCredentialsError, RateLimitedError } from "../../../../lib/errors.ts";
import { RateLimit } from "../../../../lib/rate-limiter.ts";
import type { Account } from "../../../../services/auth/accounts.repo.ts";
import { type AuthDeps, AuthLogic } from "../../../../services/auth/auth.logic.ts";

const ACCOUNT: Account = {
  _id: "acc-1",
  email: "ann@example.test",
  username: "Ann_1",
  usernameLower: "ann_1",
  passwordHash: "$argon2id$stored",
  state: "active",
  createdAt: new Date(),
  updatedAt: new Date(),
};

/** AuthLogic over fakes that log what a login does, with real in-memory limits of 3 failures. */
function logicWithTrace() {
  const trace: string[] = [];
  const tracked = (name: string, limit: RateLimit): RateLimit =>
    ({
      consume: async (key: string) => {
        trace.push(`${name}.consume ${key}`);
        await limit.consume(key);
      },
      check: async (key: string) => {
        trace.push(`${name}.check ${key}`);
        await limit.check(key);
      },
    }) as unknown as RateLimit;
  const rate = { points: 3, duration: 60 };
  const deps = {
    accounts: {
      findActiveByEmail: async (email: string) => {
        trace.push("lookup");
        return email === ACCOUNT.email ? ACCOUNT : null;
      },
      findActiveByUsername: async (username: string) => {
        trace.push("lookup");
        return username.toLowerCase() === ACCOUNT.usernameLower ? ACCOUNT : null;
      },
    },
    hasher: {
      verify: async () => {
        trace.push("argon2");
        return false;
      },
      verifyNothing: async () => {
        trace.push("argon2");
        return false as const;
      },
      needsRehash: () => false,
    },
    limits: {
      loginIp: tracked("ip", new RateLimit("ip", { points: 1000, duration: 60 }, undefined, "t", undefined)),
      loginAccount: tracked("account", new RateLimit("account", rate, undefined, "t", undefined)),
    },
  } as unknown as AuthDeps;
  return { logic: new AuthLogic(deps), trace };
}

const client = { ip: "203.0.113.9", userAgent: "test" };
const noName = async () => "";

describe("AuthLogic.login failed-login limit", () => {
  test("every name of an account counts against the account's own key", async () => {
    const { logic, trace } = logicWithTrace();
    const tries = [
      { email: "ann@example.test", password: "wrong" },
      { email: " ANN@Example.TEST ", password: "wrong" },
      { username: "ANN_1", password: "wrong" },
    ];
    for (const input of tries)
      await assert.rejects(logic.login(input, client, noName), InvalidCredentialsError);
    assert.deepEqual(
      trace.filter((t) => t.startsWith("account.consume")),
      ["account.consume a:acc-1", "account.consume a:acc-1", "account.consume a:acc-1"],
    );
    await assert.rejects(
      logic.login({ username: "ann_1", password: "right" }, client, noName),
      RateLimitedError,
    );
  });

  test("a name of no account does the same work in the same order, on a key of its own", async () => {
    const known = logicWithTrace();
    const unknown = logicWithTrace();
    await assert.rejects(
      known.logic.login({ email: "ann@example.test", password: "wrong" }, client, noName),
      InvalidCredentialsError,
    );
    await assert.rejects(
      unknown.logic.login({ email: "Nobody@Example.test", password: "wrong" }, client, noName),
      InvalidCredentialsError,
    );
    const shape = (trace: string[]) => trace.map((t) => t.replace(/ .*/, ""));
    assert.deepEqual(shape(unknown.trace), shape(known.trace));
    assert.deepEqual(shape(known.trace), [
      "ip.consume",
      "lookup",
      "account.check",
      "argon2",
      "account.consume",
    ]);
    assert.ok(unknown.trace.includes("account.consume e:nobody@example.test"), unknown.trace.join());
  });

  test("a name of no account is paused after the same number of failures as an account", async () => {
    for (const input of [{ email: "ann@example.test" }, { username: "ghost_user" }]) {
      const { logic } = logicWithTrace();
      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) {
        outcomes.push(
          await logic.login({ ...input, password: "wrong" }, client, noName).then(
            () => "ok",
            (err: Error) => err.constructor.name,
          ),
        );
      }
      assert.deepEqual(outcomes, [
        "InvalidCredentialsError",
        "InvalidCredentialsError",
        "InvalidCredentialsError",
        "RateLimitedError",
      ]);
    }
  });
});
