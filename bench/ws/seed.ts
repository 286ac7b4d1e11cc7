/**
 * Seeds the users and group chats of the WebSocket benchmark straight into the store the platform
 * will open, through the platform's own repositories, and mints their access tokens with the
 * platform's own signing code and the signing key kept in that store.
 *
 * Why not POST /auth/register: every registration costs one argon2id hash (about 45 per second on
 * this machine), so 10,000 users would take about four minutes of hashing before the benchmark
 * could start, and the hashes would measure nothing the benchmark is about. Here every account
 * gets the same precomputed argon2id hash (of a password no one uses), and what register would
 * write besides the hash is written the same way: its account (inserted active at once, in the
 * repository's document shape: register's pending-then-activate update is a locked write on
 * FerretDB and would triple the seeding time), its profile and a session per user, then group
 * chats of GROUP_SIZE members. The tokens are signed by SigningKeys.sign with
 * the newest key in the store (made here when there is none, as auth does at start), so the
 * gateway verifies them exactly as it verifies the tokens auth issues. No refresh tokens are made:
 * the access tokens outlive the run and the clients never refresh.
 *
 * Call it before the platform opens the store: the embedded store allows one process per data dir.
 */
import { randomUUID } from "node:crypto";
import type { PlatformConfig } from "../../lib/config.ts";
import { openStore } from "../../lib/store/index.ts";
import { type Account, AccountsRepository } from "../../services/auth/accounts.repo.ts";
import { PasswordHasher } from "../../services/auth/passwords.ts";
import { SessionsRepository } from "../../services/auth/sessions.repo.ts";
import { SigningKeysRepository } from "../../services/auth/signing-keys.repo.ts";
import { SigningKeys } from "../../services/auth/signing-keys.ts";
import { ChatsRepository } from "../../services/chat/chats.repo.ts";
import { ProfilesRepository } from "../../services/profile/profiles.repo.ts";

export const GROUP_SIZE = 10;
/** Store writes in flight while seeding. */
const WRITE_CONCURRENCY = 32;

export interface SeededUser {
  id: string;
  token: string;
  chatId: string;
}

export interface SeededGroup {
  id: string;
  members: string[];
}

export interface Seeded {
  users: SeededUser[];
  groups: SeededGroup[];
  seconds: number;
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function inBatches<T>(items: T[], limit: number, task: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function seed(config: PlatformConfig, count: number, log: (m: string) => void): Promise<Seeded> {
  const started = Date.now();
  const store = await openStore(config);
  try {
    const accountDocs = store.collection<Account>("accounts");
    const accounts = new AccountsRepository(accountDocs);
    const profiles = new ProfilesRepository(store.collection("profiles"));
    const sessions = new SessionsRepository(store.collection("sessions"));
    const keysRepo = new SigningKeysRepository(store.collection("signing_keys"));
    const chats = new ChatsRepository(store.collection("chats"));
    await Promise.all([accounts.init(), profiles.init(), sessions.init(), keysRepo.init(), chats.init()]);
    const keys = new SigningKeys(keysRepo, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      accessTtlS: config.jwt.accessTtlS,
      keyRotationS: config.jwt.keyRotationS,
    });
    await keys.refresh();
    const hasher = new PasswordHasher(config.hashing);
    const passwordHash = await hasher.hash(`bench-${randomUUID()}`);
    const tag = Date.now().toString(36);
    const ids = Array.from({ length: count }, () => randomUUID());
    const groups: SeededGroup[] = [];
    for (let i = 0; i < count; i += GROUP_SIZE)
      groups.push({ id: randomUUID(), members: ids.slice(i, i + GROUP_SIZE) });
    const now = new Date();
    const expiresAt = new Date(now.getTime() + config.jwt.refreshTtlS * 1000);
    const tokens = new Map<string, string>();
    await inBatches(
      ids.map((id, i) => ({ id, i })),
      WRITE_CONCURRENCY,
      async ({ id, i }) => {
        const username = `b${tag}x${i}`;
        const email = `${username}@bench.test`;
        const sessionId = randomUUID();
        const account = accountDocs.insertOne({
          _id: id,
          email,
          username,
          usernameLower: username,
          passwordHash,
          state: "active",
          createdAt: now,
          updatedAt: now,
        });
        const profile = profiles.create({ id, email, username, displayName: username });
        const session = sessions.create({
          _id: sessionId,
          userId: id,
          userAgent: "bench",
          ip: "127.0.0.1",
          lastUsedAt: now,
          expiresAt,
        });
        await Promise.all([account, profile, session]);
        tokens.set(id, await keys.sign({ userId: id, sessionId }));
        if ((i + 1) % 2_000 === 0) log(`seeded ${i + 1} of ${count} users`);
      },
    );
    await inBatches(groups, WRITE_CONCURRENCY, async (g) => {
      await chats.insert({
        _id: g.id,
        type: "group",
        name: `bench ${g.id.slice(0, 8)}`,
        ownerId: g.members[0] ?? null,
        members: g.members,
      });
    });
    const chatOf = new Map(groups.flatMap((g) => g.members.map((m) => [m, g.id] as const)));
    const users = ids.map((id) => ({
      id,
      token: tokens.get(id) as string,
      chatId: chatOf.get(id) as string,
    }));
    return { users, groups, seconds: (Date.now() - started) / 1000 };
  } finally {
    await store.close();
  }
}
