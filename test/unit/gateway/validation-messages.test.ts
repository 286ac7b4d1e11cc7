/**
 * Validation messages as a client reads them: each names the field, what is accepted and, when
 * short and not a secret, what was sent. Through a real broker, with the params of contracts.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Context, ServiceBroker } from "moleculer";
import { toHttpError } from "../../../gateway/error-mapping.ts";
import { PARAMS } from "../../../lib/contracts.ts";

const broker = new ServiceBroker({ logger: false, validator: true });
broker.createService({
  name: "t",
  actions: Object.fromEntries(
    (["auth.login", "auth.register", "chat.open", "profile.update"] as const).map((action) => [
      action.replace(".", "_"),
      { params: PARAMS[action] as never, handler: (ctx: Context) => ctx.params },
    ]),
  ),
});
before(() => broker.start());
after(() => broker.stop());

async function messages(action: string, params: object): Promise<Record<string, string>> {
  try {
    await broker.call(`t.${action}`, params);
  } catch (err) {
    const details = toHttpError(err).body.error.details as { field: string; message: string }[];
    return Object.fromEntries(details.map((d) => [d.field, d.message]));
  }
  return {};
}

describe("validation messages", () => {
  test("login: neither email nor username, and both", async () => {
    assert.deepEqual(await messages("auth_login", { password: "x" }), {
      email: "The body must have exactly one of 'email' and 'username'; it has none of them",
    });
    assert.deepEqual(await messages("auth_login", { email: "a@b.test", username: "abc", password: "x" }), {
      username: "The body must have exactly one of 'email' and 'username'; it has 'email' and 'username'",
    });
    assert.deepEqual(await messages("auth_login", { username: "abc", password: "x" }), {});
  });

  test("an enum names the sent value and the allowed ones, each in its place", async () => {
    assert.deepEqual(await messages("chat_open", { type: "dm" }), {
      type: `The 'type' field must be one of: direct, group; got "dm"`,
    });
    assert.deepEqual(await messages("chat_open", { type: "direct" }), {
      userId: "The 'userId' field is required when 'type' is 'direct'",
    });
    assert.deepEqual(await messages("chat_open", { type: "group", name: "g", userId: "u1" }), {
      userId: "The 'userId' field is not taken when 'type' is 'group'",
    });
  });

  test("an http:// avatar says https is required and quotes the URL", async () => {
    assert.deepEqual(await messages("profile_update", { avatarUrl: "http://img.example/a.png" }), {
      avatarUrl:
        "The 'avatarUrl' field must be an https:// URL without spaces (http:// is refused); got \"http://img.example/a.png\"",
    });
  });

  test("lengths count characters, and a password is never quoted", async () => {
    assert.deepEqual(await messages("profile_update", { displayName: "😀".repeat(64) }), {});
    const long = await messages("auth_register", {
      email: "a@b.test",
      username: "abc",
      password: "😀".repeat(1025),
    });
    assert.equal(long.password, "The 'password' field must have at most 1024 characters; it has 1025");
    const pattern = await messages("auth_register", {
      email: "a@b.test",
      username: "ü ber",
      password: "p".repeat(8),
    });
    assert.equal(
      pattern.username,
      `The 'username' field may hold only the letters A-Z and a-z, digits and _; got "ü ber"`,
    );
  });
});
