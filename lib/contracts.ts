/**
 * The typed boundary between nodes: each action's params schema (fastest-validator, used by the
 * service that owns the action and by the gateway's OpenAPI generator) and its result type, plus
 * the events. `call()` checks names, params and results at build time.
 */
import type { Context, ServiceBroker } from "moleculer";

const email = { type: "email", max: 254, normalize: true } as const;
const username = { type: "string", min: 3, max: 32, pattern: "^[A-Za-z0-9_]+$" } as const;
const password = { type: "string", min: 8, max: 1024 } as const;
const displayName = { type: "string", min: 1, max: 64, trim: true } as const;
const id = { type: "string", min: 1, max: 64, pattern: "^[A-Za-z0-9_-]+$" } as const;

export const PARAMS = {
  "auth.register": {
    $$strict: true,
    email,
    username,
    password,
    displayName: { ...displayName, optional: true },
  },
  "auth.login": {
    $$strict: true,
    email: { ...email, optional: true },
    username: { ...username, optional: true },
    password: { type: "string", min: 1, max: 1024 },
  },
  "auth.refresh": { $$strict: true, refreshToken: { type: "string", min: 1, max: 256 } },
  "auth.logout": { $$strict: true },
  "auth.logoutAll": { $$strict: true },
  "auth.sessions": { $$strict: true },
  "auth.revokeSession": { $$strict: true, id },
  "auth.jwks": { $$strict: true },
  "profile.me": { $$strict: true },
  "profile.update": {
    $$strict: true,
    displayName: { ...displayName, optional: true },
    bio: { type: "string", max: 500, optional: true, nullable: true },
    avatarUrl: { type: "string", max: 2048, pattern: "^https://\\S+$", optional: true, nullable: true },
  },
  "profile.get": { $$strict: true, id },
  "profile.byUsername": { $$strict: true, username: { type: "string", min: 1, max: 32 } },
  "profile.search": {
    $$strict: true,
    q: { type: "string", min: 1, max: 32 },
    limit: { type: "number", integer: true, min: 1, max: 50, convert: true, optional: true },
    cursor: { type: "string", max: 128, optional: true },
  },
} as const;

export interface UserView {
  id: string;
  email: string;
  username: string;
  displayName: string;
  createdAt: string;
}

export interface PublicProfile {
  id: string;
  username: string;
  displayName: string;
  bio: string | null;
  avatarUrl: string | null;
  createdAt: string;
}

export interface OwnProfile extends PublicProfile {
  email: string;
  updatedAt: string;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface SessionView {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  userAgent: string;
  current: boolean;
}

export interface Revocation {
  sessionId: string;
  until: string;
}

export interface ActionMap {
  "auth.register": {
    params: { email: string; username: string; password: string; displayName?: string };
    result: { user: UserView } & TokenPair;
  };
  "auth.login": {
    params: { email?: string; username?: string; password: string };
    result: { user: UserView } & TokenPair;
  };
  "auth.refresh": { params: { refreshToken: string }; result: TokenPair };
  "auth.logout": { params: Record<string, never>; result: null };
  "auth.logoutAll": { params: Record<string, never>; result: null };
  "auth.sessions": { params: Record<string, never>; result: { sessions: SessionView[] } };
  "auth.revokeSession": { params: { id: string }; result: null };
  "auth.jwks": { params: Record<string, never>; result: { keys: Record<string, unknown>[] } };
  "auth.revocations": { params: Record<string, never>; result: { revocations: Revocation[] } };
  "auth.rotateKeys": { params: Record<string, never>; result: { keys: number } };
  "auth.ready": { params: Record<string, never>; result: { ok: true } };
  "profile.create": {
    params: { id: string; email: string; username: string; displayName: string };
    result: OwnProfile;
  };
  "profile.remove": { params: { id: string }; result: { removed: boolean } };
  "profile.me": { params: Record<string, never>; result: OwnProfile };
  "profile.update": {
    params: { displayName?: string; bio?: string | null; avatarUrl?: string | null };
    result: OwnProfile;
  };
  "profile.get": { params: { id: string }; result: PublicProfile };
  "profile.byUsername": { params: { username: string }; result: PublicProfile };
  "profile.search": {
    params: { q: string; limit?: number; cursor?: string };
    result: { users: PublicProfile[]; nextCursor: string | null };
  };
  "profile.ready": { params: Record<string, never>; result: { ok: true } };
}

export interface EventMap {
  /** Sessions whose access tokens must stop working now, on every gateway. */
  "auth.sessions.revoked": { revocations: Revocation[] };
  /** A new signing key exists: gateways refetch the JWKS. */
  "auth.keys.rotated": Record<string, never>;
  /** Cached profile records to drop on every node. */
  "profile.cache.clean": { ids: string[] };
}

/** The user an access token authenticated, as the gateway puts it in `ctx.meta.user`. */
export interface AuthUser {
  id: string;
  sessionId: string;
}

export interface CallMeta {
  user?: AuthUser;
  clientIp?: string;
  userAgent?: string;
  $statusCode?: number;
}

type Caller = Pick<Context, "call"> | Pick<ServiceBroker, "call">;

export function call<K extends keyof ActionMap>(
  caller: Caller,
  action: K,
  params: ActionMap[K]["params"],
  opts?: { meta?: CallMeta; timeout?: number },
): Promise<ActionMap[K]["result"]> {
  return (caller.call as (a: string, p: unknown, o?: unknown) => Promise<ActionMap[K]["result"]>)(
    action,
    params,
    opts,
  );
}

export function broadcast<K extends keyof EventMap>(
  broker: Pick<ServiceBroker, "broadcast">,
  event: K,
  payload: EventMap[K],
): Promise<void> {
  return broker.broadcast(event, payload) as Promise<void>;
}
