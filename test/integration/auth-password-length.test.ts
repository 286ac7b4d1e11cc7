/**
 * Password lengths count characters (code points of the NFKC form, what is hashed), not UTF-16
 * units; accounts made under the older count keep signing in.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { Store } from "../../lib/store/types.ts";
import { PasswordHasher } from "../../services/auth/passwords.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

const EMOJI = "\u{1F600}";
let platform: Awaited<ReturnType<typeof startEmbedded>>;
let api: ApiClient;

before(async () => {
  platform = await startEmbedded();
  api = new ApiClient(platform.url);
});
after(() => platform.stop());

const register = (password: string) =>
  api.raw("POST", "/auth/register", { body: { ...newUser(), password } });
const detail = (body: unknown) =>
  (body as { error: { code: string; details: { field: string; type: string }[] } }).error;

describe("password length in characters", () => {
  test("four emoji (eight UTF-16 units) are four characters: 422 stringMin", async () => {
    const res = await register(EMOJI.repeat(4));
    assert.equal(res.status, 422);
    assert.equal(detail(res.body).code, "VALIDATION_FAILED");
    assert.deepEqual(
      detail(res.body).details.map((d) => [d.field, d.type]),
      [["password", "stringMin"]],
    );
  });

  test("four letters with combining accents compose into four characters: 422", async () => {
    assert.equal((await register("e\u0301a\u0301o\u0301u\u0301")).status, 422);
  });

  test("eight emoji register and sign in", async () => {
    const user = {
      ...newUser(),
      password: `${EMOJI}\u{1F680}\u{1F9E1}\u{1F308}${EMOJI}\u{1F355}\u{1F3B8}\u{1F40C}`,
    };
    assert.equal((await api.raw("POST", "/auth/register", { body: user })).status, 201);
    const login = await api.raw("POST", "/auth/login", {
      body: { email: user.email, password: user.password },
    });
    assert.equal(login.status, 200);
  });

  test("three ffi ligatures are nine characters after NFKC: accepted", async () => {
    assert.equal((await register("\uFB03\uFB03\uFB03")).status, 201);
  });

  test("more than 1024 characters after NFKC is 422 stringMax, however few UTF-16 units were sent", async () => {
    const res = await register("\uFDFA".repeat(57));
    assert.equal(res.status, 422);
    assert.deepEqual(
      detail(res.body).details.map((d) => [d.field, d.type]),
      [["password", "stringMax"]],
    );
  });

  test("an account whose password is short by the new count still signs in", async () => {
    const input = newUser();
    const { user } = (await api.raw("POST", "/auth/register", { body: input })).body as {
      user: { id: string };
    };
    // As the earlier release stored it: argon2id over the NFKC form of a four-emoji password.
    const hasher = new PasswordHasher({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
    const store = (platform.broker.getLocalService("auth") as unknown as { store: Store }).store;
    const old = EMOJI.repeat(4);
    await store
      .collection("accounts")
      .updateOne({ _id: user.id }, { $set: { passwordHash: await hasher.hash(old) } });
    const login = await api.raw("POST", "/auth/login", { body: { username: input.username, password: old } });
    assert.equal(login.status, 200);
  });
});
