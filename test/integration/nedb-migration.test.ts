/**
 * A DATA_DIR written by the last release on nedb (test/fixtures/nedb-v1, made by its
 * make-fixture.ts) opened by this release: the first start imports it into SQLite and moves the
 * nedb files to a backup folder, and everything the old release served comes back the same:
 * sign-ins with the old passwords, sessions and their refresh tokens, revocations, the signing
 * key, chats, members, histories with edits and tombstones, read marks and clientMsgId
 * idempotency. A second start imports nothing.
 */
import assert from "node:assert/strict";
import { appendFile, cp, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ApiClient, expectSession } from "../../client/rest-client.ts";
import type { ChatView, MessageView, SessionView } from "../../lib/contracts.ts";
import { IMPORT_FILE } from "../../lib/store/nedb-import.ts";
import { DATABASE_FILE } from "../../lib/store/sqlite.ts";
import type { FixtureSession, FixtureUser, Manifest } from "../fixtures/nedb-v1/make-fixture.ts";
import { fullHistory } from "../support/history.ts";
import { type PlatformNode, startNode, waitReady } from "../support/platform.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/nedb-v1");
const manifest = JSON.parse(await readFile(path.join(FIXTURE, "manifest.json"), "utf8")) as Manifest;
const tempDir = tempDirs("nedb-migration-test-");
/** The fixture's key stays the newest, so the tokens signed now show it was carried over. */
const ENV = { SIGNING_KEY_ROTATION_S: String(100 * 365 * 86_400) };

let dataDir: string;
let node: PlatformNode;
/** The nedb files as they were handed to the first start. */
const handedOver = new Map<string, Buffer>();
/** The refresh token each fixture session holds now (the test refreshes them). */
const current = new Map<string, string>();

async function start(): Promise<PlatformNode> {
  const started = await startNode(["auth", "profile", "chat", "gateway"], { DATA_DIR: dataDir, ...ENV });
  await waitReady(started.url);
  return started;
}

/**
 * The fixture's sessions end a year after it was made. An update line per session and spent-token
 * record, as nedb writes one, gives them ten more years, so the test does not depend on its date.
 */
async function extendLifetimes(dir: string): Promise<void> {
  const until = { $$date: Date.now() + 10 * 365 * 86_400_000 };
  for (const name of ["sessions.db", "refresh_tokens.db"]) {
    const file = path.join(dir, name);
    const latest = new Map<string, Record<string, unknown>>();
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      if (!line) continue;
      const doc = JSON.parse(line) as Record<string, unknown>;
      if (typeof doc._id !== "string") continue;
      if (doc.$$deleted === true) latest.delete(doc._id);
      else latest.set(doc._id, doc);
    }
    const lines = [...latest.values()].map((doc) => JSON.stringify({ ...doc, expiresAt: until }));
    await appendFile(file, `${lines.join("\n")}\n`);
  }
}

function user(name: string): FixtureUser {
  const found = manifest.users.find((u) => u.name === name);
  assert.ok(found, `the manifest has ${name}`);
  return found;
}

/** A signed-in client per user, made on first use. */
const signedIn = new Map<string, ApiClient>();

async function signIn(name: string): Promise<ApiClient> {
  let client = signedIn.get(name);
  if (!client) {
    client = new ApiClient(node.url);
    const { email, password } = user(name);
    await client.login({ email, password });
    signedIn.set(name, client);
  }
  return client;
}

function refresh(refreshToken: string) {
  return new ApiClient(node.url).raw<{ accessToken: string; refreshToken: string }>("POST", "/auth/refresh", {
    body: { refreshToken },
    token: null,
  });
}

function jwtPart(token: string, part: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[part] ?? "", "base64url").toString("utf8"));
}

function nameOf(userId: string): string {
  return manifest.users.find((u) => u.id === userId)?.name as string;
}

before(async () => {
  dataDir = await tempDir();
  await cp(path.join(FIXTURE, "data"), dataDir, { recursive: true });
  await extendLifetimes(dataDir);
  for (const name of await readdir(dataDir)) handedOver.set(name, await readFile(path.join(dataDir, name)));
  node = await start();
});

after(() => node?.stop());

test("the first start imports the nedb files into social.sqlite and moves them to a dated backup folder", async () => {
  const names = await readdir(dataDir);
  assert.ok(names.includes(DATABASE_FILE));
  assert.equal(names.includes(IMPORT_FILE), false);
  assert.deepEqual(
    names.filter((name) => name.endsWith(".db") || name.endsWith(".db~")),
    [],
  );
  const backups = names.filter((name) => name.startsWith("nedb-backup-"));
  assert.equal(backups.length, 1);
  assert.match(backups[0] ?? "", /^nedb-backup-\d{4}-\d{2}-\d{2}$/);
  const folder = path.join(dataDir, backups[0] as string);
  assert.deepEqual((await readdir(folder)).sort(), [...handedOver.keys()].sort());
  for (const [name, bytes] of handedOver)
    assert.ok((await readFile(path.join(folder, name))).equals(bytes), name);
});

test("every user signs in with the same password, by email and by username, with the same profile", async () => {
  for (const u of manifest.users) {
    const byEmail = expectSession(
      await new ApiClient(node.url).login({ email: u.email, password: u.password }),
    );
    assert.equal(byEmail.user.id, u.id);
    assert.equal(byEmail.user.username, u.username);
    const byUsername = new ApiClient(node.url);
    assert.equal(
      expectSession(await byUsername.login({ username: u.username, password: u.password })).user.id,
      u.id,
    );
    assert.deepEqual(await byUsername.user(u.id), u.profile);
    const wrong = await new ApiClient(node.url).raw("POST", "/auth/login", {
      body: { email: u.email, password: `${u.password}-not` },
    });
    assert.equal(wrong.status, 401);
  }
});

test("the registration the old release undid stays undone, and its email and username are free", async () => {
  const undone = manifest.undoneRegistration;
  const login = { email: undone.email, password: undone.password };
  assert.equal((await new ApiClient(node.url).raw("POST", "/auth/login", { body: login })).status, 401);
  const ana = await signIn("ana");
  assert.equal((await ana.raw("GET", `/users/by-username/${undone.username}`)).status, 404);
  const registered = await new ApiClient(node.url).register(undone);
  assert.equal(registered.user.username, undone.username);
  assert.equal((await ana.userByUsername(undone.username)).id, registered.user.id);
});

test("the JWKS publishes the old signing key and no new one", async () => {
  const jwks = (await (await fetch(`${node.url}/.well-known/jwks.json`)).json()) as {
    keys: { kid: string }[];
  };
  assert.deepEqual(
    jwks.keys.map((key) => key.kid),
    manifest.signingKeyIds,
  );
});

test("every live session's refresh token refreshes, signed with the old key, and the session is listed", async () => {
  for (const session of manifest.liveSessions) {
    const res = await refresh(session.refreshToken);
    assert.equal(res.status, 200, `${session.user}'s session ${session.sessionId}`);
    assert.equal(jwtPart(res.body.accessToken, 1).sid, session.sessionId);
    assert.equal(jwtPart(res.body.accessToken, 0).kid, manifest.signingKeyIds[0]);
    current.set(session.sessionId, res.body.refreshToken);
    const listed = await new ApiClient(node.url).raw<{ sessions: SessionView[] }>("GET", "/auth/sessions", {
      token: res.body.accessToken,
    });
    assert.equal(listed.status, 200);
    const mine = listed.body.sessions.find((s) => s.id === session.sessionId);
    assert.equal(mine?.current, true);
  }
});

test("a session ended by logout stays revoked and is not listed", async () => {
  for (const revoked of manifest.revokedSessions) {
    assert.equal((await refresh(revoked.refreshToken)).status, 401);
    const { sessions } = await (await signIn(revoked.user)).sessions();
    assert.equal(
      sessions.some((s) => s.id === revoked.sessionId),
      false,
    );
    const live = manifest.liveSessions.filter((s) => s.user === revoked.user).map((s) => s.sessionId);
    for (const id of live) assert.ok(sessions.some((s) => s.id === id));
  }
});

test("a spent refresh token that comes back is taken as stolen: its session ends", async () => {
  const spent = manifest.spentTokens.find((s) => s.user === "ben") as FixtureSession;
  assert.equal((await refresh(spent.refreshToken)).status, 401);
  assert.equal((await refresh(current.get(spent.sessionId) as string)).status, 401);
  const { sessions } = await (await signIn("ben")).sessions();
  assert.equal(
    sessions.some((s) => s.id === spent.sessionId),
    false,
  );
});

test("each user's chat list is as before: chats, members, last messages and unread counts", async () => {
  for (const u of manifest.users) {
    const client = await signIn(u.name);
    const { chats } = await client.request<{ chats: ChatView[] }>("GET", "/chats");
    chats.sort((a, b) => a.id.localeCompare(b.id));
    // The fixture's release had no mute, mentions or reactions: their empty values are added.
    const before = (manifest.chatLists[u.id] ?? []).map((c) => ({
      ...c,
      muted: false,
      mutedUntil: null,
      mentionCount: 0,
    }));
    assert.deepEqual(chats, before, `${u.name}'s chats`);
    for (const chat of chats) {
      const mark = manifest.readMarks.find((m) => m.chatId === chat.id && m.userId === u.id)?.seq ?? 0;
      assert.equal(chat.unreadCount, (chat.lastMessage?.seq ?? 0) - mark, `${u.name} in ${chat.id}`);
    }
  }
  assert.ok(manifest.readMarks.length >= 5);
});

test("every chat has its members, and its history in seq order with the edits and the tombstone", async () => {
  let edited = 0;
  let deleted = 0;
  for (const chat of manifest.chats) {
    const client = await signIn(nameOf(chat.members[0] as string));
    const view = await client.request<ChatView>("GET", `/chats/${chat.id}`);
    assert.equal(view.type, chat.type);
    assert.equal(view.name, chat.name);
    assert.deepEqual([...view.members].sort(), chat.members);
    const messages = await fullHistory(client, chat.id);
    assert.deepEqual(
      messages,
      chat.messages.map((m) => ({ ...m, reactions: [], mentions: [], attachments: [] })),
    );
    assert.deepEqual(
      messages.map((m) => m.seq),
      messages.map((_, i) => i + 1),
    );
    edited += messages.filter((m) => m.editedAt && !m.deleted).length;
    deleted += messages.filter((m) => m.deleted && m.message === "").length;
    for (const removed of chat.removed) {
      const outsider = await signIn(nameOf(removed));
      assert.equal((await outsider.raw("GET", `/chats/${chat.id}/messages`)).status, 403);
    }
  }
  assert.ok(edited >= 2 && deleted >= 1, `${edited} edited and ${deleted} deleted messages`);
  assert.ok(manifest.chats.some((chat) => chat.removed.length > 0));
});

test("a resend with an old clientMsgId answers the original message; a new one takes the next seq", async () => {
  for (const chat of manifest.chats) {
    for (const original of chat.messages) {
      const sender = await signIn(nameOf(original.senderId));
      if (chat.removed.includes(original.senderId)) {
        const refused = await sender.raw("POST", `/chats/${chat.id}/messages`, {
          body: { message: "sent again", clientMsgId: original.clientMsgId },
        });
        assert.equal(refused.status, 403, "a removed member sends nothing, not even a resend");
        continue;
      }
      const res = await sender.raw<MessageView>("POST", `/chats/${chat.id}/messages`, {
        body: { message: "sent again", clientMsgId: original.clientMsgId },
      });
      assert.equal(res.status, 200, original.clientMsgId);
      assert.equal(res.body.id, original.id);
      assert.equal(res.body.seq, original.seq);
    }
    const sender = await signIn(nameOf(chat.members[0] as string));
    assert.equal((await fullHistory(sender, chat.id)).length, chat.messages.length);
    const fresh = await sender.request<MessageView>("POST", `/chats/${chat.id}/messages`, {
      message: "after the migration",
      clientMsgId: `after-${chat.id}`,
    });
    assert.equal(fresh.seq, chat.messages.length + 1);
  }
});

test("a restart on the same DATA_DIR imports nothing again and keeps what was written since", async () => {
  const before = await stat(path.join(dataDir, DATABASE_FILE));
  const backups = (await readdir(dataDir)).filter((name) => name.startsWith("nedb-backup-"));
  await node.stop();
  node = await start();
  signedIn.clear();
  assert.equal((await stat(path.join(dataDir, DATABASE_FILE))).ino, before.ino);
  assert.deepEqual(
    (await readdir(dataDir)).filter((name) => name.startsWith("nedb-backup-")),
    backups,
  );
  for (const chat of manifest.chats) {
    const messages = await fullHistory(await signIn(nameOf(chat.members[0] as string)), chat.id);
    assert.equal(messages.length, chat.messages.length + 1);
    assert.equal(messages.at(-1)?.message, "after the migration");
  }
});
