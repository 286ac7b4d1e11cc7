/**
 * The users of the chat benchmarks, written straight into the store the platform will open, as
 * bench/ws/seed.ts writes them (and for the same reason: a registration costs an argon2id hash):
 * an active account, a profile and a session per user, through the platform's repositories, and an
 * access token signed with the store's newest signing key, so the gateway verifies it as it
 * verifies auth's. Unlike the WebSocket seed it makes no chats: the benchmarks make theirs through
 * the API (run.ts), so the chats, messages, reactions and read marks are stored by the server code
 * under test, whatever shape it gives them.
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
import { ProfilesRepository } from "../../services/profile/profiles.repo.ts";
import { inBatches } from "../ws/seed.ts";

const WRITE_CONCURRENCY = 32;

export interface BenchUser {
  id: string;
  username: string;
  token: string;
}

/** `count` users named `<prefix>0`, `<prefix>1`, ... (3-32 characters, as `@mentions` need). */
export async function seedUsers(
  config: PlatformConfig,
  count: number,
  prefix: string,
  log: (m: string) => void,
): Promise<{ users: BenchUser[]; seconds: number }> {
  const started = Date.now();
  const store = await openStore(config);
  try {
    const accountDocs = store.collection<Account>("accounts");
    const accounts = new AccountsRepository(accountDocs);
    const profiles = new ProfilesRepository(store.collection("profiles"));
    const sessions = new SessionsRepository(store.collection("sessions"));
    const keysRepo = new SigningKeysRepository(store.collection("signing_keys"));
    await Promise.all([accounts.init(), profiles.init(), sessions.init(), keysRepo.init()]);
    const keys = new SigningKeys(keysRepo, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      accessTtlS: config.jwt.accessTtlS,
      keyRotationS: config.jwt.keyRotationS,
    });
    await keys.refresh();
    const passwordHash = await new PasswordHasher(config.hashing).hash(`bench-${randomUUID()}`);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + config.jwt.refreshTtlS * 1000);
    const users: BenchUser[] = Array.from({ length: count }, (_, i) => ({
      id: randomUUID(),
      username: `${prefix}${i}`,
      token: "",
    }));
    let done = 0;
    await inBatches(users, WRITE_CONCURRENCY, async (user) => {
      const { id, username } = user;
      const email = `${username}@bench.test`;
      const sessionId = randomUUID();
      await Promise.all([
        accountDocs.insertOne({
          _id: id,
          email,
          username,
          usernameLower: username.toLowerCase(),
          passwordHash,
          state: "active",
          createdAt: now,
          updatedAt: now,
        }),
        profiles.create({ id, email, username, displayName: username }),
        sessions.create({
          _id: sessionId,
          userId: id,
          userAgent: "bench",
          ip: "127.0.0.1",
          lastUsedAt: now,
          expiresAt,
        }),
      ]);
      user.token = await keys.sign({ userId: id, sessionId });
      if (++done % 2_000 === 0) log(`seeded ${done} of ${count} users`);
    });
    return { users, seconds: (Date.now() - started) / 1000 };
  } finally {
    await store.close();
  }
}
