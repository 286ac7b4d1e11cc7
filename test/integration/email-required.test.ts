/**
 * REQUIRE_EMAIL_VERIFICATION=true: an account whose address is not verified cannot open chats or
 * send, over REST or WebSocket (403 EMAIL_NOT_VERIFIED), until it follows the mailed link and
 * refreshes its tokens (the access token carries the verification).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { waitForOutboxMail } from "../support/outbox.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { type Frame, RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;

before(async () => {
  platform = await startEmbedded({ REQUIRE_EMAIL_VERIFICATION: "true" });
});
after(() => platform.stop());

async function registered() {
  const input = newUser();
  const api = new ApiClient(platform.url);
  const res = await api.raw<{ user: { id: string }; accessToken: string; refreshToken: string }>(
    "POST",
    "/auth/register",
    {
      body: input,
    },
  );
  assert.equal(res.status, 201);
  return { ...input, api, id: res.body.user.id, token: res.body.accessToken, refresh: res.body.refreshToken };
}

async function verify(u: { email: string; api: ApiClient }) {
  const mail = await waitForOutboxMail(platform.dataDir, u.email, /#verify-email=/);
  assert.equal(
    (await u.api.raw("POST", "/auth/verify-email", { body: { token: mail.token }, token: null })).status,
    204,
  );
}

test("an unverified account can read but not open chats or send, until it verifies and refreshes", async () => {
  const a = await registered();
  const b = await registered();
  await verify(b);
  const refreshedB = await b.api.raw<{ accessToken: string }>("POST", "/auth/refresh", {
    body: { refreshToken: b.refresh },
  });
  const bToken = refreshedB.body.accessToken;

  const open = await a.api.raw("POST", "/chats", { body: { type: "direct", userId: b.id }, token: a.token });
  assert.equal(open.status, 403);
  assert.equal((open.body as { error: { code: string } }).error.code, "EMAIL_NOT_VERIFIED");
  assert.equal((await a.api.raw("GET", "/chats", { token: a.token })).status, 200, "reading is allowed");

  // b (verified) opens the chat; a still cannot send into it, over REST or WebSocket.
  const chat = await b.api.raw<{ id: string }>("POST", "/chats", {
    body: { type: "direct", userId: a.id },
    token: bToken,
  });
  assert.equal(chat.status, 201);
  const send = await a.api.raw("POST", `/chats/${chat.body.id}/messages`, {
    body: { message: "hi", clientMsgId: "c1" },
    token: a.token,
  });
  assert.equal(send.status, 403);
  assert.equal((send.body as { error: { code: string } }).error.code, "EMAIL_NOT_VERIFIED");
  const socket = new RawSocket(`${platform.url.replace("http", "ws")}/ws`, { token: a.token });
  await socket.opened();
  socket.send({ type: "send_message", chatId: chat.body.id, message: "hi", clientMsgId: "c2" });
  const error = (await socket.next((f: Frame) => f.type === "error")) as Frame & { code: string };
  assert.equal(error.code, "EMAIL_NOT_VERIFIED");
  socket.close();

  await verify(a);
  // The old access token still says unverified; the refreshed one says verified.
  assert.equal(
    (
      await a.api.raw("POST", `/chats/${chat.body.id}/messages`, {
        body: { message: "hi", clientMsgId: "c3" },
        token: a.token,
      })
    ).status,
    403,
  );
  const refreshed = await a.api.raw<{ accessToken: string }>("POST", "/auth/refresh", {
    body: { refreshToken: a.refresh },
  });
  const sent = await a.api.raw("POST", `/chats/${chat.body.id}/messages`, {
    body: { message: "hi", clientMsgId: "c4" },
    token: refreshed.body.accessToken,
  });
  assert.equal(sent.status, 201);
});
