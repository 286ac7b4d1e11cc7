/**
 * `npm run seed -- --users N [--group-size G] [--prefix P] [--password PW] [--two-factor K]
 * [--out FILE]`: writes N ready-to-use users (their addresses verified), and group chats of G of
 * them (none with `--group-size 0`), into the store the platform is configured with (DATA_DIR's
 * embedded store, or MONGO_URL), and mints each user an access token; the last K users have
 * two-factor sign-in on, each with a TOTP secret of its own (no recovery codes). `--out` writes
 * them as JSON (`{users: [{id, username, email, token, chatId, totpSecret?}], groups: [{id,
 * members}]}`). An operator's and a load test's tool: the benchmarks (bench/ws/, bench/chat/,
 * bench/accounts/) seed through `seedStore`, the same function.
 *
 * Why not POST /auth/register: every registration costs one argon2id hash (about 45 per second on
 * two cores), so 10,000 users would take minutes of hashing. Here every account gets one hash
 * (of `--password`, else of a random password no one knows), and what register writes besides
 * the hash is written by the services' own repositories, in their shapes: an account (inserted
 * active at once: register's pending-then-activate update is a locked write on FerretDB and would
 * triple the time), a profile and a session per user, then the group chats (the first member owns
 * each). The tokens are signed by auth's SigningKeys with the newest signing key in the store
 * (made here when there is none, as auth does at start), so the gateway verifies them as it
 * verifies the tokens auth issues; they live ACCESS_TOKEN_TTL_S. No refresh tokens are made.
 *
 * Run it while the platform is stopped when it uses the embedded store (one process per data dir).
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { forEachLimit } from "../lib/concurrency.ts";
import { loadConfig, type PlatformConfig } from "../lib/config.ts";
import { openStore } from "../lib/store/index.ts";
import { type Account, AccountsRepository } from "../services/auth/accounts.repo.ts";
import { PasswordHasher } from "../services/auth/passwords.ts";
import { SessionsRepository } from "../services/auth/sessions.repo.ts";
import { SigningKeysRepository } from "../services/auth/signing-keys.repo.ts";
import { SigningKeys } from "../services/auth/signing-keys.ts";
import { newTotpSecret } from "../services/auth/two-factor.ts";
import { ChatsRepository } from "../services/chat/chats.repo.ts";
import { ProfilesRepository } from "../services/profile/profiles.repo.ts";

/** Store writes in flight while seeding. */
const WRITE_CONCURRENCY = 32;

export interface SeedOptions {
  users: number;
  /** Members per group chat (the last group may be smaller); 0 makes no chats. */
  groupSize: number;
  /** Usernames are `<prefix><i>` (3-32 characters in all); default `s<time in base 36>x`. */
  usernamePrefix?: string;
  /** Everyone's password; default a random one no one knows. */
  password?: string;
  /** Emails are `<username>@<emailDomain>` (default seed.test). */
  emailDomain?: string;
  /** How many of the users, the last ones, have two-factor sign-in on (default 0). */
  twoFactor?: number;
  /** The sessions' user agent and the start of the chats' names (default "seed"). */
  label?: string;
  log?: (message: string) => void;
}

export interface SeededUser {
  id: string;
  username: string;
  email: string;
  /** An access token of the user's session. */
  token: string;
  /** The user's group chat; "" when no chats were made. */
  chatId: string;
  /** The base32 TOTP secret of a user with two-factor sign-in on (as an authenticator holds it). */
  totpSecret?: string;
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

export async function seedStore(config: PlatformConfig, options: SeedOptions): Promise<Seeded> {
  const { users: count, groupSize } = options;
  const prefix = options.usernamePrefix ?? `s${Date.now().toString(36)}x`;
  const domain = options.emailDomain ?? "seed.test";
  const label = options.label ?? "seed";
  const log = options.log ?? (() => undefined);
  const twoFactor = options.twoFactor ?? 0;
  if (!Number.isInteger(twoFactor) || twoFactor < 0 || twoFactor > count) {
    throw new RangeError(`twoFactor must be a whole number from 0 to the users (${count})`);
  }
  const started = Date.now();
  const store = await openStore(config);
  try {
    const accountDocs = store.collection<Account>("accounts");
    const accounts = new AccountsRepository(accountDocs);
    const profiles = new ProfilesRepository(store.collection("profiles"));
    const sessions = new SessionsRepository(store.collection("sessions"));
    const keysRepo = new SigningKeysRepository(store.collection("signing_keys"));
    const chats = new ChatsRepository(store.collection("chats"));
    await Promise.all([
      accounts.init(),
      profiles.init(),
      sessions.init(),
      keysRepo.init(),
      ...(groupSize > 0 ? [chats.init()] : []),
    ]);
    const keys = new SigningKeys(keysRepo, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      accessTtlS: config.jwt.accessTtlS,
      keyRotationS: config.jwt.keyRotationS,
    });
    await keys.refresh();
    const passwordHash = await new PasswordHasher(config.hashing).hash(
      options.password ?? `seed-${randomUUID()}`,
    );
    const now = new Date();
    const expiresAt = new Date(now.getTime() + config.jwt.refreshTtlS * 1000);
    const users: SeededUser[] = Array.from({ length: count }, (_, i) => {
      const username = `${prefix}${i}`;
      const user: SeededUser = {
        id: randomUUID(),
        username,
        email: `${username}@${domain}`,
        token: "",
        chatId: "",
      };
      if (i >= count - twoFactor) user.totpSecret = newTotpSecret();
      return user;
    });
    const groups: SeededGroup[] = [];
    if (groupSize > 0) {
      for (let i = 0; i < count; i += groupSize) {
        const group = { id: randomUUID(), members: users.slice(i, i + groupSize).map((u) => u.id) };
        for (const u of users.slice(i, i + groupSize)) u.chatId = group.id;
        groups.push(group);
      }
    }
    let done = 0;
    await forEachLimit(users, WRITE_CONCURRENCY, async (user) => {
      const { id, username, email, totpSecret } = user;
      const sessionId = randomUUID();
      await Promise.all([
        accountDocs.insertOne({
          _id: id,
          email,
          emailVerified: true,
          username,
          usernameLower: username.toLowerCase(),
          passwordHash,
          state: "active",
          ...(totpSecret ? { mfa: { secret: totpSecret, lastStep: 0, recovery: [], enabledAt: now } } : {}),
          createdAt: now,
          updatedAt: now,
        }),
        profiles.create({ id, email, username, displayName: username, emailVerified: true }),
        sessions.create({
          _id: sessionId,
          userId: id,
          userAgent: label,
          ip: "127.0.0.1",
          lastUsedAt: now,
          expiresAt,
        }),
      ]);
      user.token = await keys.sign({ userId: id, sessionId });
      if (++done % 2_000 === 0) log(`seeded ${done} of ${count} users`);
    });
    await forEachLimit(groups, WRITE_CONCURRENCY, async (g) => {
      await chats.insert({
        _id: g.id,
        type: "group",
        name: `${label} ${g.id.slice(0, 8)}`,
        ownerId: g.members[0] ?? null,
        members: g.members,
      });
    });
    return { users, groups, seconds: (Date.now() - started) / 1000 };
  } finally {
    await store.close();
  }
}

const USAGE = `usage: npm run seed -- --users N [--group-size G] [--prefix P] [--password PW] [--two-factor K] [--out FILE]
  --users N        accounts to write, each with a profile, a session and an access token
  --group-size G   members per group chat (default 10; 0: no chats)
  --prefix P       usernames are P0, P1, ... (default s<time in base 36>x)
  --password PW    everyone's password (default: a random one no one knows)
  --two-factor K   the last K users have two-factor sign-in on (their TOTP secrets are in --out)
  --out FILE       write the users (with their tokens) and groups there as JSON
The store is the platform's: DATA_DIR (embedded, default ./data) or MONGO_URL, from the environment.`;

if (import.meta.main) {
  const parse = () =>
    parseArgs({
      options: {
        users: { type: "string" },
        "group-size": { type: "string", default: "10" },
        prefix: { type: "string" },
        password: { type: "string" },
        "two-factor": { type: "string", default: "0" },
        out: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse().values;
  } catch (err) {
    // An unknown option, or a value that looks like one (`--group-size -1`).
    console.error(`${err instanceof Error ? err.message : err}\n${USAGE}`);
    process.exit(2);
  }
  const users = Number(values.users);
  const groupSize = Number(values["group-size"]);
  const twoFactor = Number(values["two-factor"]);
  if (
    values.help ||
    !Number.isInteger(users) ||
    users < 1 ||
    !Number.isInteger(groupSize) ||
    groupSize < 0 ||
    !Number.isInteger(twoFactor) ||
    twoFactor < 0 ||
    twoFactor > users
  ) {
    console.error(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  try {
    const seeded = await seedStore(loadConfig(), {
      users,
      groupSize,
      twoFactor,
      ...(values.prefix !== undefined ? { usernamePrefix: values.prefix } : {}),
      ...(values.password !== undefined ? { password: values.password } : {}),
      log: (m) => console.error(m),
    });
    if (values.out) {
      const { users: written, groups } = seeded;
      await writeFile(values.out, `${JSON.stringify({ users: written, groups }, null, 2)}\n`, {
        mode: 0o600,
      });
    }
    console.error(
      `Seeded ${seeded.users.length} users and ${seeded.groups.length} group chats in ${seeded.seconds.toFixed(1)} s${values.out ? `; written to ${values.out}` : ""}`,
    );
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
