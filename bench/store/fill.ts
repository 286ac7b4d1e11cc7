/**
 * A child of the store growth benchmark: fills a DATA_DIR up to `messages` messages through the
 * store interface and the platform's repositories (of the store's tree), then closes the store.
 * The first call also writes the 1,000 accounts and profiles and the 2,000 chats (dataset.ts);
 * later calls add messages to what is there, so one DATA_DIR grows 10,000 -> 100,000 -> 1,000,000.
 *
 * Documents have the repositories' shapes and ids: an account and profile per user (the same
 * precomputed argon2id-shaped hash for all), chats through `ChatsRepository.insert` (a direct
 * chat's pairKey), messages from `MessagesRepository.newMessage` (`_id` is `chatId_seq`) stored by
 * `insertMany` in batches of 1,000, dated on a synthetic clock (one message every 2 s); then, as
 * the chat service does after sends, each chat's summary (`recordMessage`) and every member's read
 * receipt (`markRead`, a few messages behind the newest). Indexes come from each repository's
 * `init()`. The manifest (users, chats, their newest seq) is written beside the DATA_DIR for the
 * measuring children.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { forEachLimit as inBatches } from "../../lib/concurrency.ts";
import type { Account } from "../../services/auth/accounts.repo.ts";
import type { LastMessage } from "../../services/chat/chats.repo.ts";
import type { Message } from "../../services/chat/messages.repo.ts";
import type { Profile } from "../../services/profile/profiles.repo.ts";
import { announce, childArgs } from "../child.ts";
import {
  chatPicker,
  clientMsgIdOf,
  FIRST_MESSAGE_AT,
  type Manifest,
  MESSAGE_EVERY_MS,
  messageLength,
  messageText,
  planChats,
  type Random,
  seeded,
} from "./dataset.ts";
import { opener, type Repositories, repositoriesOf, type StoreTarget } from "./stores.ts";

export interface FillArgs {
  target: StoreTarget;
  dataDir: string;
  manifestFile: string;
  messages: number;
  seed: number;
}

export interface FillResult {
  messages: number;
  added: number;
  seconds: number;
  /** Seconds of message inserts alone. */
  insertSeconds: number;
}

const BATCH = 1_000;
const WRITE_CONCURRENCY = 32;
/** The same argon2id-shaped hash for every account: the benchmark never logs in. */
const PASSWORD_HASH = `$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$${"A".repeat(43)}`;

const args = childArgs<FillArgs>();
const started = performance.now();
const { store } = await (await opener(args.target))(args.dataDir);
const repos = (await repositoriesOf(args.target.tree))(store);
await Promise.all(Object.values(repos).map((repo) => repo.init()));

const manifest: Manifest = existsSync(args.manifestFile)
  ? (JSON.parse(await readFile(args.manifestFile, "utf8")) as Manifest)
  : await writeUsersAndChats(repos, planChats(args.seed));
if (manifest.messages > args.messages) {
  throw new Error(`${args.dataDir} holds ${manifest.messages} messages, more than ${args.messages}`);
}
const added = args.messages - manifest.messages;
const insertStarted = performance.now();
const touched = await addMessages(repos, manifest, added, seeded(args.seed + args.messages));
const insertSeconds = (performance.now() - insertStarted) / 1000;
await recordSummaries(repos, manifest, touched, seeded(args.seed + args.messages + 1));
await store.close();
manifest.messages = args.messages;
await writeFile(args.manifestFile, JSON.stringify(manifest));
announce("result", {
  messages: args.messages,
  added,
  seconds: (performance.now() - started) / 1000,
  insertSeconds,
} satisfies FillResult);

async function writeUsersAndChats(r: Repositories, plan: Manifest): Promise<Manifest> {
  const at = new Date(FIRST_MESSAGE_AT - 86_400_000);
  const names = plan.users.map((id, i) => ({ id, username: `user${String(i).padStart(4, "0")}` }));
  const accounts: Account[] = names.map(({ id, username }) => ({
    _id: id,
    email: `${username}@example.test`,
    username,
    usernameLower: username,
    passwordHash: PASSWORD_HASH,
    state: "active",
    createdAt: at,
    updatedAt: at,
  }));
  const profiles: Profile[] = names.map(({ id, username }) => ({
    _id: id,
    email: `${username}@example.test`,
    username,
    usernameLower: username,
    displayName: `User ${username.slice(4)}`,
    bio: null,
    avatarUrl: null,
    createdAt: at,
    updatedAt: at,
  }));
  await store.collection<Account>("accounts").insertMany(accounts);
  await store.collection<Profile>("profiles").insertMany(profiles);
  await inBatches(plan.chats, WRITE_CONCURRENCY, async (chat) => {
    const group = chat.type === "group";
    await r.chats.insert({
      _id: chat.id,
      type: chat.type,
      name: group ? `Group ${chat.id.slice(0, 8)}` : null,
      ownerId: group ? (chat.members[0] as string) : null,
      members: chat.members,
      ...(group ? {} : { pairKey: chat.members.join(":") }),
    });
  });
  return plan;
}

/** Adds `count` messages; answers the newest message of each chat that got one. */
async function addMessages(
  r: Repositories,
  m: Manifest,
  count: number,
  random: Random,
): Promise<Map<number, LastMessage>> {
  const pick = chatPicker(m.chats, random);
  const newest = new Map<number, LastMessage>();
  for (let done = 0; done < count; ) {
    const batch: Message[] = [];
    for (; batch.length < BATCH && done < count; done++) {
      const index = pick();
      const chat = m.chats[index] as (typeof m.chats)[number];
      chat.lastSeq += 1;
      const senderId = chat.members[Math.floor(random() * chat.members.length)] as string;
      const message = r.messages.newMessage(
        {
          chatId: chat.id,
          senderId,
          message: messageText(random, messageLength(random)),
          clientMsgId: clientMsgIdOf(random),
        },
        chat.lastSeq,
      );
      message.createdAt = new Date(FIRST_MESSAGE_AT + (m.messages + done) * MESSAGE_EVERY_MS);
      message.updatedAt = message.createdAt;
      batch.push(message);
      newest.set(index, {
        id: message._id,
        seq: message.seq,
        senderId,
        message: message.message,
        createdAt: message.createdAt,
      });
    }
    const stored = await r.messages.insertMany(batch);
    if (stored !== batch.length) throw new Error(`insertMany stored ${stored} of ${batch.length}`);
  }
  return newest;
}

/** Each chat's summary, and every member's receipt a few messages behind (0-4) the newest. */
async function recordSummaries(
  r: Repositories,
  m: Manifest,
  newest: Map<number, LastMessage>,
  random: Random,
): Promise<void> {
  const receipts = [...newest.keys()].flatMap((index) => {
    const chat = m.chats[index] as (typeof m.chats)[number];
    return chat.members.map((userId) => ({
      chatId: chat.id,
      userId,
      seq: Math.max(1, chat.lastSeq - Math.floor(random() * 5)),
    }));
  });
  await inBatches([...newest], WRITE_CONCURRENCY, async ([index, last]) => {
    await r.chats.recordMessage((m.chats[index] as (typeof m.chats)[number]).id, last);
  });
  await inBatches(receipts, WRITE_CONCURRENCY, async ({ chatId, userId, seq }) => {
    await r.receipts.markRead(chatId, userId, seq);
  });
}

process.exit(0);
