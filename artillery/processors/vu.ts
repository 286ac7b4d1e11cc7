/**
 * What the scenarios' processor functions share: Artillery's context and events as far as they
 * use them, unique users, a pool of registered users made in a `before` section through the
 * platform's client, and a hook that counts an error status as a failed virtual user.
 */
import { randomBytes } from "node:crypto";
import { ApiClient } from "../../client/rest-client.ts";
import { forEachLimit } from "../../lib/concurrency.ts";

/** Artillery's per-virtual-user context: `vars` feed the templates (`{{ token }}`). */
export interface VuContext {
  vars: Record<string, unknown>;
}

/** Artillery's event emitter: custom counters and histograms land in the report and in `ensure`. */
export interface VuEvents {
  emit(type: "counter" | "histogram" | "rate", name: string, value?: number): void;
}

export interface Credentials {
  email: string;
  username: string;
  password: string;
}

export interface PoolUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
}

/** A user no other virtual user of any run has: 24 random hex digits. */
export function uniqueUser(): Credentials {
  const tag = randomBytes(12).toString("hex");
  return { email: `u${tag}@load.test`, username: `u_${tag}`, password: `pw-${tag}` };
}

export function target(context: VuContext): string {
  const url = context.vars.target;
  if (typeof url !== "string" || !url) throw new Error("no target: give --target or config.target");
  return url;
}

export function numberVar(context: VuContext, name: string, fallback: number): number {
  const value = Number(context.vars[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`variable ${name} must be a number`);
  return value;
}

/** Registers `count` users through the REST client, a few at a time (each costs an argon2id hash). */
export async function registerPool(url: string, count: number): Promise<PoolUser[]> {
  const users: PoolUser[] = [];
  await forEachLimit(Array.from({ length: count }, uniqueUser), 4, async (credentials) => {
    const { user, accessToken } = await new ApiClient(url).register(credentials);
    users.push({ id: user.id, email: credentials.email, password: credentials.password, accessToken });
  });
  return users;
}

export function pick<T>(items: readonly T[]): T {
  const item = items[Math.floor(Math.random() * items.length)];
  if (item === undefined) throw new Error("the pool is empty: did the before section run?");
  return item;
}

export function pool(context: VuContext, name: string): PoolUser[] {
  const users = context.vars[name];
  if (!Array.isArray(users) || users.length === 0) throw new Error(`no ${name}: did the before section run?`);
  return users as PoolUser[];
}

/**
 * afterResponse hook: a 4xx or 5xx answer fails the virtual user, so `vusers.failed` and the
 * `errors.*` counters count it and the error-rate check sees it.
 */
export async function failOnErrorStatus(
  _request: unknown,
  response: { statusCode: number },
  _context: VuContext,
  events: VuEvents,
): Promise<void> {
  if (response.statusCode < 400) return;
  events.emit("counter", `app.status.${response.statusCode}`, 1);
  throw new Error(`HTTP ${response.statusCode}`);
}
