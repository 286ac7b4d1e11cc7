/**
 * `npm run store:copy` (scripts/store-copy.ts) between the embedded store and the cluster tier's
 * FerretDB: a community made through the platform on a DATA_DIR is copied over, and a cluster
 * started on the copy honours its tokens, lets every user sign in and shows every message in seq
 * order; a copy killed mid-way (after a batch, or between a batch's insert and its marker) finishes
 * when run again; a non-empty target is refused without --force; and the copy goes back into a
 * fresh DATA_DIR that the embedded platform starts on, which the copy then refuses to read.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ApiClient, expectSession } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { openStore } from "../../lib/store/index.ts";
import { copyStore, PROGRESS_COLLECTION } from "../../scripts/store-copy.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, startNode, waitReady } from "../support/platform.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/store-copy.ts");
const USERS = 8;
const MESSAGES = 100;
const tempDir = tempDirs("store-copy-test-");

interface Member {
  id: string;
  username: string;
  password: string;
}

interface ChatRecord {
  members: string[];
  /** By seq, as the platform answered them. */
  messages: MessageView[];
}

/** What the community on the embedded store holds, as the platform answered it. */
interface Community {
  users: Member[];
  chats: Map<string, ChatRecord>;
  /** The first user's tokens, given out by the embedded platform. */
  tokens: { accessToken: string; refreshToken: string };
}

interface CopyRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let servers: Servers;
let sourceDir: string;
let community: Community;
/** The message sent on the cluster after the move, in the first chat. */
let sentAfterMove: MessageView | undefined;
const run = randomBytes(3).toString("hex");

function databaseUrl(name: string): string {
  const url = new URL(servers.mongo.url);
  url.pathname = `/copy${run}${name}`;
  return url.toString();
}

/** Runs the CLI; `onLine` sees each stdout line as it comes (and may kill the child). */
function copyCli(args: string[], onLine?: (line: string, kill: () => void) => void): Promise<CopyRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let partial = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) onLine?.(line, () => child.kill("SIGKILL"));
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

async function signIn(url: string, user: Member): Promise<ApiClient> {
  const client = new ApiClient(url);
  const login = expectSession(await client.login({ username: user.username, password: user.password }));
  assert.equal(login.user.id, user.id, `${user.username} signs in as the same account`);
  return client;
}

async function history(client: ApiClient, chatId: string): Promise<MessageView[]> {
  const all: MessageView[] = [];
  for (;;) {
    const after = all.at(-1)?.seq ?? 0;
    const page = await client.request<{ messages: MessageView[] }>(
      "GET",
      `/chats/${chatId}/messages?after=${after}&limit=50`,
    );
    if (page.messages.length === 0) return all;
    all.push(...page.messages);
  }
}

const shape = (m: MessageView) => ({
  id: m.id,
  seq: m.seq,
  senderId: m.senderId,
  message: m.message,
  clientMsgId: m.clientMsgId,
  createdAt: m.createdAt,
  deleted: m.deleted === true,
});

/** Every chat, read through `url` by one of its members, holds the community's messages and `extra`. */
async function assertHistories(url: string, clients: Map<string, ApiClient>, extra: MessageView[] = []) {
  for (const [chatId, chat] of community.chats) {
    const reader = clients.get(chat.members[0] ?? "") as ApiClient;
    const messages = await history(reader, chatId);
    assert.deepEqual(
      messages.map((m) => m.seq),
      messages.map((_, i) => i + 1),
      `chat ${chatId}: seqs from 1, no gap`,
    );
    const expected = [...chat.messages, ...extra.filter((m) => m.chatId === chatId)];
    assert.deepEqual(messages.map(shape), expected.map(shape), `chat ${chatId} through ${url}`);
  }
}

/** Eight users, two group chats and three direct ones, 100 messages, an edit, a delete, receipts. */
async function populate(url: string): Promise<Community> {
  const users: Member[] = [];
  const clients: ApiClient[] = [];
  for (let i = 0; i < USERS; i++) {
    const input = newUser("copy");
    const client = new ApiClient(url);
    const { user } = await client.register(input);
    users.push({ id: user.id, username: input.username, password: input.password });
    clients.push(client);
  }
  const chats: Community["chats"] = new Map();
  const open = async (owner: number, body: object) => {
    const chat = await (clients[owner] as ApiClient).request<ChatView>("POST", "/chats", body);
    chats.set(chat.id, { members: chat.members, messages: [] });
  };
  await open(0, { type: "group", name: "everyone", memberIds: users.slice(1).map((u) => u.id) });
  await open(3, { type: "group", name: "three", memberIds: [users[4]?.id, users[5]?.id] });
  for (const [a, b] of [
    [0, 1],
    [2, 3],
    [6, 7],
  ] as const) {
    await open(a, { type: "direct", userId: users[b]?.id });
  }
  const byId = new Map(users.map((u, i) => [u.id, clients[i] as ApiClient]));
  const chatIds = [...chats.keys()];
  for (let i = 0; i < MESSAGES; i++) {
    const chatId = chatIds[i % chatIds.length] as string;
    const chat = chats.get(chatId) as ChatRecord;
    const sender = byId.get(chat.members[i % chat.members.length] as string) as ApiClient;
    const message = await sender.request<MessageView>("POST", `/chats/${chatId}/messages`, {
      message: `message ${i} in ${chatId}`,
      clientMsgId: `copy-${i}`,
    });
    chat.messages.push(message);
  }
  const [chatId, chat] = [...chats][0] as [string, ChatRecord];
  const [edited, deleted] = [chat.messages[2], chat.messages[4]] as [MessageView, MessageView];
  const editor = byId.get(edited.senderId) as ApiClient;
  const messagePath = (id: string) => `/chats/${chatId}/messages/${encodeURIComponent(id)}`;
  chat.messages[2] = await editor.request<MessageView>("PATCH", messagePath(edited.id), {
    message: "edited",
  });
  await (byId.get(deleted.senderId) as ApiClient).request("DELETE", messagePath(deleted.id));
  chat.messages[4] = (await history(editor, chatId))[4] as MessageView;
  assert.equal(chat.messages[4]?.deleted, true);
  for (const member of chat.members) {
    await (byId.get(member) as ApiClient).request("POST", `/chats/${chatId}/read`, { seq: 10 });
  }
  const first = clients[0] as ApiClient;
  await first.updateMe({ bio: "moved with store:copy" });
  const tokens = { accessToken: first.accessToken ?? "", refreshToken: first.refreshToken ?? "" };
  return { users, chats, tokens };
}

before(async () => {
  servers = await startServers();
  sourceDir = await tempDir();
  const node = await startNode(["auth", "profile", "chat", "gateway"], { DATA_DIR: sourceDir });
  try {
    await waitReady(node.url);
    community = await populate(node.url);
  } finally {
    await node.stop();
  }
});

after(async () => {
  await servers?.stop();
});

describe("store:copy between the embedded store and a MongoDB-wire server", () => {
  test("a cluster started on the copy signs every user in and shows every message in order", async () => {
    const target = databaseUrl("main");
    const copied = await copyCli(["--from", sourceDir, "--to", target]);
    assert.equal(copied.status, 0, copied.stderr + copied.stdout);
    assert.match(copied.stdout, /^messages\s+100\s+100\s+equal$/m);
    assert.match(copied.stdout, /^accounts\s+8\s+8\s+equal$/m);
    assert.match(copied.stdout, /Every collection has as many documents on both sides/);

    const cluster = await TestCluster.start(servers, { MONGO_URL: target });
    try {
      await cluster.add("auth-1", ["auth"]);
      await cluster.add("profile-1", ["profile"]);
      await cluster.add("chat-1", ["chat"]);
      const url = (await cluster.add("gateway-1", ["gateway"])).url;
      await waitReady(url);
      const api = new ApiClient(url);
      const { accessToken, refreshToken } = community.tokens;
      assert.equal(
        (await api.raw("GET", "/users/me", { token: accessToken })).status,
        200,
        "signed in still",
      );
      const refreshed = await api.raw("POST", "/auth/refresh", { body: { refreshToken }, token: null });
      assert.equal(refreshed.status, 200, "the session goes on");
      const clients = new Map<string, ApiClient>();
      for (const user of community.users) clients.set(user.id, await signIn(url, user));
      await assertHistories(url, clients);
      const first = clients.get(community.users[0]?.id ?? "") as ApiClient;
      assert.equal((await first.me()).bio, "moved with store:copy");
      const listed = await first.request<{ chats: ChatView[] }>("GET", "/chats");
      const own = [...community.chats].filter(([, c]) => c.members.includes(community.users[0]?.id ?? ""));
      assert.deepEqual(listed.chats.map((c) => c.id).sort(), own.map(([id]) => id).sort());

      const [chatId, chat] = [...community.chats][0] as [string, ChatRecord];
      sentAfterMove = await first.request<MessageView>("POST", `/chats/${chatId}/messages`, {
        message: "the first message on the cluster",
        clientMsgId: "after-the-move",
      });
      assert.equal(sentAfterMove.seq, chat.messages.length + 1, "the next seq follows the copied ones");
    } finally {
      await cluster.stop();
    }
  });

  test("a copy killed after its first progress line finishes when run again, with nothing twice", async (t) => {
    const target = databaseUrl("resumed");
    const killed = await copyCli(["--from", sourceDir, "--to", target, "--batch", "2"], (line, kill) => {
      if (/^messages: \d+\/\d+ /.test(line)) kill();
    });
    assert.equal(killed.signal, "SIGKILL", killed.stdout + killed.stderr);
    const store = await openStore({ mongoUrl: target, dataDir: "" });
    try {
      const stored = await store.collection("messages").count({});
      assert.ok(stored > 0 && stored < MESSAGES, `the kill came mid-way (${stored} messages stored)`);
      t.diagnostic(`killed with ${stored} of ${MESSAGES} messages copied`);
      assert.equal(await store.collection(PROGRESS_COLLECTION).count({}), 1, "the marker stays");
    } finally {
      await store.close();
    }

    const resumed = await copyCli(["--from", sourceDir, "--to", target, "--batch", "2"]);
    assert.equal(resumed.status, 0, resumed.stderr + resumed.stdout);
    assert.match(resumed.stdout, /^Resuming the copy from /m);
    assert.match(resumed.stdout, /^messages\s+100\s+100\s+equal$/m);
    assert.doesNotMatch(resumed.stdout, /DIFFERS|already in the target/);

    const check = await openStore({ mongoUrl: target, dataDir: "" });
    try {
      const messages = await check
        .collection<{ _id: string; chatId: string; seq: number }>("messages")
        .find({});
      assert.equal(new Set(messages.map((m) => m._id)).size, MESSAGES);
      for (const [chatId, chat] of community.chats) {
        const seqs = messages
          .filter((m) => m.chatId === chatId)
          .map((m) => m.seq)
          .sort((a, b) => a - b);
        assert.deepEqual(
          seqs,
          chat.messages.map((m) => m.seq),
          `chat ${chatId}: every seq once`,
        );
      }
      assert.equal(await check.collection(PROGRESS_COLLECTION).count({}), 0, "the marker is gone");
    } finally {
      await check.close();
    }
  });

  test("a rerun after a kill between a batch's insert and its marker stores the rest of that batch", async () => {
    const from = await openStore({ dataDir: sourceDir });
    const to = await openStore({ mongoUrl: databaseUrl("in-flight"), dataDir: "" });
    try {
      const killed = new Error("killed after the first batch of messages");
      const killAtMessages = (line: string) => {
        if (line.startsWith("messages: ")) throw killed;
      };
      await assert.rejects(copyStore(from, to, { source: sourceDir, batch: 10 }, killAtMessages), killed);
      // What the next batch's insert stored before the kill, its marker update not made.
      const target = to.collection("messages");
      const [last] = await target.find({}, { sort: { _id: -1 }, limit: 1 });
      const next = await from
        .collection("messages")
        .find({ _id: { $gt: last?._id } }, { sort: { _id: 1 }, limit: 4 });
      assert.equal(await target.insertMany(next), 4);

      const lines: string[] = [];
      const report = await copyStore(from, to, { source: sourceDir, batch: 10 }, (line) => lines.push(line));
      assert.ok(report.equal, lines.join("\n"));
      assert.equal(await target.count({}), MESSAGES);
      const done = new RegExp(`^messages: ${MESSAGES}/${MESSAGES} \\(\\d+/s\\), done$`);
      assert.ok(
        lines.some((line) => done.test(line)),
        lines.join("\n"),
      );
    } finally {
      await to.close();
      await from.close();
    }
  });

  test("a second copy into the filled target is refused, and accepted with --force", async () => {
    const target = databaseUrl("resumed");
    const refused = await copyCli(["--from", sourceDir, "--to", target]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /The target is not empty \(accounts: 8, .*messages: 100/);
    assert.match(refused.stderr, /--force/);

    const forced = await copyCli(["--from", sourceDir, "--to", target, "--force"]);
    assert.equal(forced.status, 0, forced.stderr + forced.stdout);
    assert.match(forced.stdout, /^messages: 100\/100, 100 already in the target/m);
    assert.match(forced.stdout, /Every collection has as many documents on both sides/);
  });

  test("the copy goes back into a fresh DATA_DIR the embedded platform starts on", async () => {
    const dataDir = await tempDir();
    const from = await openStore({ mongoUrl: databaseUrl("main"), dataDir: "" });
    const to = await openStore({ dataDir });
    const lines: string[] = [];
    try {
      const report = await copyStore(from, to, { source: "the cluster's copy", batch: 7 }, (l) =>
        lines.push(l),
      );
      assert.ok(report.equal, lines.join("\n"));
      const messages = report.collections.find((c) => c.name === "messages");
      assert.deepEqual(messages && [messages.source, messages.target], [MESSAGES + 1, MESSAGES + 1]);
    } finally {
      await to.close();
      await from.close();
    }

    const node = await startNode(["auth", "profile", "chat", "gateway"], { DATA_DIR: dataDir });
    try {
      await waitReady(node.url);
      const clients = new Map<string, ApiClient>();
      for (const user of community.users) clients.set(user.id, await signIn(node.url, user));
      assert.ok(sentAfterMove, "the message sent on the cluster is there to find");
      await assertHistories(node.url, clients, [sentAfterMove]);

      const held = await copyCli(["--from", dataDir, "--to", databaseUrl("held")]);
      assert.equal(held.status, 1);
      assert.match(held.stderr, /DATA_DIR .* is in use by process \d+/);
    } finally {
      await node.stop();
    }
  });
});
