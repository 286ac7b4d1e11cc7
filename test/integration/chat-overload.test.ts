/**
 * A chat node bounds the sends it works on (CHAT_SEND_CONCURRENCY, and as many waiting): beyond
 * that a send is refused at once with a retryable 503 instead of queueing without end. Nothing
 * refused is stored, nothing accepted is lost, and seqs stay gap-free.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;

before(async () => {
  platform = await startEmbedded({ CHAT_SEND_CONCURRENCY: "1" });
});
after(() => platform?.stop());

test("sends beyond the chat node's bound are refused 503 with Retry-After, and succeed when retried", async () => {
  const alice = new ApiClient(platform.url);
  const bob = new ApiClient(platform.url);
  await alice.register(newUser("alice"));
  const bobId = (await bob.register(newUser("bob"))).user.id;
  const chat = await alice.request<ChatView>("POST", "/chats", {
    type: "group",
    name: "busy",
    memberIds: [bobId],
  });
  const send = (i: number) =>
    alice.raw("POST", `/chats/${chat.id}/messages`, { body: { message: `m${i}`, clientMsgId: `c${i}` } });

  const first = await Promise.all(Array.from({ length: 40 }, (_, i) => send(i)));
  const statuses = first.map((r) => r.status);
  assert.ok(
    statuses.every((s) => s === 201 || s === 503),
    `only 201 and 503: ${statuses.join(",")}`,
  );
  const refused = first.filter((r) => r.status === 503);
  assert.ok(refused.length > 0, "with one send at a time and one waiting, 40 at once are not all taken");
  assert.ok(
    statuses.filter((s) => s === 201).length >= 2,
    "the one in progress and the one waiting are stored",
  );
  for (const r of refused) {
    assert.equal((r.body as { error: { code: string } }).error.code, "SERVICE_UNAVAILABLE");
    assert.match(r.headers.get("retry-after") ?? "", /^\d+$/);
  }

  // The refused ones, retried one at a time with their clientMsgId, are stored once each.
  for (const [i, r] of first.entries()) {
    if (r.status !== 503) continue;
    assert.equal((await send(i)).status, 201);
  }
  const page = await alice.request<{ messages: MessageView[] }>(
    "GET",
    `/chats/${chat.id}/messages?limit=100`,
  );
  assert.deepEqual(
    page.messages.map((m) => m.seq),
    Array.from({ length: 40 }, (_, i) => i + 1),
    "40 messages, seqs 1..40",
  );
  assert.equal(new Set(page.messages.map((m) => m.clientMsgId)).size, 40);
});
