/**
 * The embedded platform on a disk that fills up: a real one, a small tmpfs mounted for the test
 * (the tests run as root, as CI does). Sends answer 503 with Retry-After while the disk is full,
 * reads go on, nothing half written is left, and sends pass again once space returns, with no
 * restart.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startNode, waitReady } from "../support/platform.ts";

let mount: string;
let platform: Awaited<ReturnType<typeof startNode>> | undefined;

before(async () => {
  mount = await mkdtemp(path.join(os.tmpdir(), "full-disk-test-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mount]);
});

after(async () => {
  await platform?.stop();
  execFileSync("umount", [mount]);
  await rm(mount, { recursive: true });
});

/** Fills the disk with a file of zeros until the disk refuses more. */
function fill(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    closeSync(fd);
  }
}

test("a full disk answers sends 503 with Retry-After, keeps reads, and sends pass again once space returns", async () => {
  const dataDir = path.join(mount, "data");
  platform = await startNode(["auth", "profile", "chat", "gateway"], { DATA_DIR: dataDir });
  await waitReady(platform.url);
  const alice = new ApiClient(platform.url);
  await alice.register(newUser("alice"));
  const bob = new ApiClient(platform.url);
  const bobId = (await bob.register(newUser("bob"))).user.id;
  const chatId = (
    (await alice.raw("POST", "/chats", { body: { type: "direct", userId: bobId } })).body as ChatView
  ).id;

  const acknowledged: number[] = [];
  const send = () =>
    alice.raw("POST", `/chats/${chatId}/messages`, {
      body: { message: `${"m".repeat(1_500)} ${acknowledged.length}`, clientMsgId: randomUUID() },
    });
  const filler = path.join(mount, "filler");
  fill(filler);

  let refused: Awaited<ReturnType<typeof send>> | undefined;
  for (let i = 0; i < 3_000 && !refused; i++) {
    const res = await send();
    if (res.status === 201) acknowledged.push((res.body as MessageView).seq);
    else refused = res;
  }
  assert.ok(refused, "the disk filled up");
  assert.equal(refused.status, 503);
  assert.equal((refused.body as { error: { code: string } }).error.code, "SERVICE_UNAVAILABLE");
  assert.ok(Number(refused.headers.get("retry-after")) >= 1, "Retry-After says when to try again");

  const read = await alice.raw("GET", `/chats/${chatId}/messages?limit=5`);
  assert.equal(read.status, 200, "reads go on while the disk is full");

  await rm(filler);
  const again = await send();
  assert.equal(again.status, 201, "sends pass again once there is room, with no restart");
  acknowledged.push((again.body as MessageView).seq);

  const history = await alice.raw("GET", `/chats/${chatId}/messages?after=0&limit=100`);
  const first = (history.body as { messages: MessageView[] }).messages;
  const all: MessageView[] = [...first];
  while (all.length < acknowledged.length + 5) {
    const next = await alice.raw("GET", `/chats/${chatId}/messages?after=${all.at(-1)?.seq ?? 0}&limit=100`);
    const page = (next.body as { messages: MessageView[] }).messages;
    if (page.length === 0) break;
    all.push(...page);
  }
  assert.deepEqual(
    all.map((m) => m.seq),
    acknowledged,
    "exactly the acknowledged messages, in order: nothing half written, nothing lost",
  );
});
