/**
 * The users of the chat benchmarks, written straight into the store the platform will open with
 * the product's seeding entry point (scripts/seed.ts, `npm run seed`), as bench/ws/seed.ts writes
 * them (and for the same reason: a registration costs an argon2id hash): an active account, a
 * profile, a session and an access token per user. Unlike the WebSocket seed it makes no chats:
 * the benchmarks make theirs through the API (run.ts), so the chats, messages, reactions and read
 * marks are stored by the server code under test, whatever shape it gives them.
 *
 * Call it before the platform opens the store: the embedded store allows one process per data dir.
 */
import type { PlatformConfig } from "../../lib/config.ts";
import { seedStore } from "../../scripts/seed.ts";

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
  const seeded = await seedStore(config, {
    users: count,
    groupSize: 0,
    usernamePrefix: prefix,
    emailDomain: "bench.test",
    label: "bench",
    log,
  });
  return {
    users: seeded.users.map(({ id, username, token }) => ({ id, username, token })),
    seconds: seeded.seconds,
  };
}
