/**
 * Seeds the users and group chats of the WebSocket benchmark straight into the store the platform
 * will open, with the product's seeding entry point (scripts/seed.ts, `npm run seed`): an active
 * account, a profile, a session and an access token per user, and group chats of GROUP_SIZE
 * members. Why not POST /auth/register: one argon2id hash per user (see scripts/seed.ts).
 *
 * Call it before the platform opens the store: the embedded store allows one process per data dir.
 */
import type { PlatformConfig } from "../../lib/config.ts";
import { type SeededGroup, seedStore } from "../../scripts/seed.ts";

export const GROUP_SIZE = 10;

export interface SeededUser {
  id: string;
  token: string;
  chatId: string;
}

export interface Seeded {
  users: SeededUser[];
  groups: SeededGroup[];
  seconds: number;
}

export async function seed(config: PlatformConfig, count: number, log: (m: string) => void): Promise<Seeded> {
  const seeded = await seedStore(config, {
    users: count,
    groupSize: GROUP_SIZE,
    usernamePrefix: `b${Date.now().toString(36)}x`,
    emailDomain: "bench.test",
    label: "bench",
    log,
  });
  const users = seeded.users.map(({ id, token, chatId }) => ({ id, token, chatId }));
  return { users, groups: seeded.groups, seconds: seeded.seconds };
}
