/**
 * One creation time per user: the profile keeps the account's `createdAt` when auth hands it
 * over, so `POST /auth/register` and `GET /users/me` can answer the same instant.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { call } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

let platform: Awaited<ReturnType<typeof startEmbedded>>;
before(async () => {
  platform = await startEmbedded();
});
after(() => platform.stop());

test("profile.create keeps the createdAt it is given", async () => {
  const createdAt = "2026-01-02T03:04:05.678Z";
  const made = await platform.broker.call("profile.create", {
    id: "created-at-1",
    email: "created-at-1@example.test",
    username: "created_at_1",
    displayName: "Created",
    createdAt,
  });
  assert.equal((made as { createdAt: string }).createdAt, createdAt);
  const read = await call(platform.broker, "profile.get", { id: "created-at-1" });
  assert.equal(read.createdAt, createdAt);
});

test("profile.create refuses a createdAt that is not an ISO time", async () => {
  await assert.rejects(
    platform.broker.call("profile.create", {
      id: "created-at-2",
      email: "created-at-2@example.test",
      username: "created_at_2",
      displayName: "Created",
      createdAt: "yesterday",
    }),
    { type: "VALIDATION_ERROR" },
  );
});

test("POST /auth/register and GET /users/me answer the same createdAt", async () => {
  const client = new ApiClient(platform.url);
  const registered = await client.register(newUser("stamp"));
  const me = await client.me();
  assert.equal(me.createdAt, registered.user.createdAt);
});

test("profile.create again with the same id answers the stored profile; a taken username is refused", async () => {
  const input = {
    id: "created-at-3",
    email: "created-at-3@example.test",
    username: "created_at_3",
    displayName: "First",
  };
  const first = (await platform.broker.call("profile.create", input)) as { createdAt: string };
  const again = (await platform.broker.call("profile.create", { ...input, displayName: "Second" })) as {
    displayName: string;
    createdAt: string;
  };
  assert.equal(again.displayName, "First", "the retry answers what was stored, not a new profile");
  assert.equal(again.createdAt, first.createdAt);
  await assert.rejects(
    platform.broker.call("profile.create", { ...input, id: "created-at-4", username: "Created_At_3" }),
    { name: "DuplicateKeyError", message: /username_unique/ },
  );
  await assert.rejects(call(platform.broker, "profile.get", { id: "created-at-4" }), { code: 404 });
  assert.equal((await call(platform.broker, "profile.get", { id: "created-at-3" })).displayName, "First");
});
