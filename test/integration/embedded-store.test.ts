/**
 * The embedded store as operators meet it, with the platform in processes of its own: one process
 * per DATA_DIR, acknowledged messages that survive SIGKILL, and a backup made under write load that
 * restores into a fresh DATA_DIR with every message acknowledged before it began.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { DataDirLockedError } from "../../lib/store/data-dir-lock.ts";
import { restoreStore } from "../../scripts/restore.ts";
import { freePort } from "../harness/servers.ts";
import { fullHistory } from "../support/history.ts";
import { NodeProcess } from "../support/node-process.ts";
import { newUser, startNode, waitReady } from "../support/platform.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ALL = ["auth", "profile", "chat", "gateway"];
const tempDir = tempDirs("embedded-store-test-");

let dataDir: string;
let node: NodeProcess;
let url: string;
let sender: ApiClient;
let senderLogin: { email: string; password: string };
let chatId: string;
/** Every message the platform acknowledged, by its clientMsgId. */
const acknowledged = new Map<string, number>();

async function startProcess(
  id: string,
  dir: string,
  services = ALL,
): Promise<{ process: NodeProcess; url: string }> {
  const port = await freePort();
  const started = new NodeProcess(id, services, {
    DATA_DIR: dir,
    PORT: String(port),
    HOST: "127.0.0.1",
    METRICS_ENABLED: "false",
    RATE_LIMIT_REGISTER_IP: "100000/60",
    RATE_LIMIT_LOGIN_IP: "100000/60",
    RATE_LIMIT_SEND_USER: "1000000/60",
  });
  await started.start();
  const base = `http://127.0.0.1:${port}`;
  await waitReady(base);
  return { process: started, url: base };
}

/** Waits until `count` messages are acknowledged, or fails once `deadlineMs` has passed. */
async function acknowledgedReach(count: number, deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (acknowledged.size < count) {
    assert.ok(Date.now() < deadline, `only ${acknowledged.size} of ${count} messages acknowledged`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function send(client: ApiClient, text: string): Promise<void> {
  const clientMsgId = randomUUID();
  const res = await client.raw("POST", `/chats/${chatId}/messages`, { body: { message: text, clientMsgId } });
  if (res.status === 201) acknowledged.set(clientMsgId, (res.body as MessageView).seq);
}

function assertHolds(messages: MessageView[], expected: Map<string, number>): void {
  assert.deepEqual(
    messages.map((m) => m.seq),
    messages.map((_, i) => i + 1),
    "seqs from 1 with no gap or repeat",
  );
  const stored = new Map(messages.map((m) => [m.clientMsgId, m.seq]));
  const missing = [...expected].filter(([clientMsgId, seq]) => stored.get(clientMsgId) !== seq);
  assert.deepEqual(missing, [], "every acknowledged message is there at its seq");
}

before(async () => {
  dataDir = await tempDir();
  ({ process: node, url } = await startProcess("embedded-a", dataDir));
  sender = new ApiClient(url);
  const registration = newUser("sender");
  senderLogin = { email: registration.email, password: registration.password };
  await sender.register(registration);
  const peer = new ApiClient(url);
  const peerId = (await peer.register(newUser("peer"))).user.id;
  const chat = await sender.raw("POST", "/chats", { body: { type: "direct", userId: peerId } });
  chatId = (chat.body as ChatView).id;
});

after(async () => {
  await node?.kill();
});

test("a second process on the same DATA_DIR refuses to start, naming the directory and the holder", async () => {
  // A chat node alone: its log is short enough for the refusal to be in the tail the error quotes.
  const second = startProcess("embedded-b", dataDir, ["chat"]);
  await assert.rejects(second, (err: Error) => {
    assert.ok(
      err.message.includes(`DATA_DIR ${dataDir} is in use by process ${node.pid}`),
      `the refusal names the dir and the process: ${err.message.slice(-1500)}`,
    );
    return true;
  });
  const res = await sender.raw("GET", "/chats");
  assert.equal(res.status, 200, "the first process goes on serving");
});

test("every acknowledged message survives SIGKILL of the process, whenever it comes", async () => {
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; i < 400; i++) {
      const sent = await send(sender, `before the kill ${w}/${i}`).then(
        () => true,
        () => false,
      );
      if (!sent) return;
    }
  });
  await acknowledgedReach(150);
  await node.kill("SIGKILL");
  await Promise.all(writers);
  const atKill = new Map(acknowledged);
  assert.ok(atKill.size >= 150);

  ({ process: node, url } = await startProcess("embedded-a2", dataDir));
  sender = new ApiClient(url);
  await sender.login(senderLogin);
  assertHolds(await fullHistory(sender, chatId), atKill);
});

test("a backup made under write load restores into a fresh DATA_DIR with every message acknowledged before it", async () => {
  let writing = true;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; writing; i++) await send(sender, `during the backup ${w}/${i}`);
  });
  const base = acknowledged.size;
  await acknowledgedReach(base + 50);
  const beforeBackup = new Map(acknowledged);
  const backupFile = path.join(await tempDir(), "backup.sqlite");
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [path.join(ROOT, "scripts/backup.ts"), backupFile, "--data-dir", dataDir],
    { cwd: ROOT, timeout: 60_000 },
  );
  const duringBackup = acknowledged.size - beforeBackup.size;
  writing = false;
  await Promise.all(writers);
  assert.match(stdout, /Backed up .* messages: \d+/s);

  await assert.rejects(restoreStore(backupFile, dataDir), DataDirLockedError, "refused while it runs");

  const fresh = path.join(await tempDir(), "restored");
  await restoreStore(backupFile, fresh);
  const restored = await startNode(ALL as never, { DATA_DIR: fresh });
  try {
    const client = new ApiClient(restored.url);
    await client.login(senderLogin);
    const messages = await fullHistory(client, chatId);
    assertHolds(messages, beforeBackup);
    assert.ok(
      messages.length <= acknowledged.size + 8,
      `no message the live store did not have (${messages.length}; ${duringBackup} acknowledged during the backup)`,
    );
  } finally {
    await restored.stop();
  }
});
