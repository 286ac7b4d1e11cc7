/**
 * Every HTTP route of the platform, in one table: the gateway builds its moleculer-web aliases
 * from it and the OpenAPI document at /openapi.json is generated from it and the action params of
 * lib/contracts.ts. A route that is not here is not reachable over HTTP.
 */
import type { ActionMap } from "../lib/contracts.ts";
import { NON_WS } from "./text-patterns.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** A resource an answer names: its path template, and where in the answer (a JSON pointer) each `:param` is. */
export interface ResourceRef {
  path: string;
  params: Record<string, string>;
}

/** What of the node's config the OpenAPI document states as limits. */
export interface DocConfig {
  chat: { maxMessageLength: number; maxGroupMembers: number };
}

export interface RouteDef {
  method: HttpMethod;
  /** moleculer-web path, with `:name` parameters. */
  path: string;
  action: keyof ActionMap;
  /** A valid access token is required. */
  auth: boolean;
  /** Status on success; 202 and 204 send no body. */
  status: 200 | 201 | 202 | 204;
  /** When a 201 route may also answer 200 (the thing existed): what that 200 is. */
  existing?: string;
  summary: string;
  tag: "auth" | "users" | "chats" | "push";
  /**
   * A DELETE whose params come in a JSON body (they hold a password): the OpenAPI document says so,
   * and a query string is refused, so a secret never lands in a URL (and the logs that keep URLs).
   */
  bodyParams?: true;
  /**
   * Failure statuses the route documents, besides those any route may give: 400, 422, 503, 401
   * when it needs a token, 404 when it has path params, 413 and 415 when it takes a body.
   */
  errors: number[];
  /** The resource a 201 made: its Location header, and the OpenAPI links to the routes under it. */
  location?: ResourceRef;
  /** Why no OpenAPI link leads to this route, when none may (its params need what no answer gives). */
  unlinked?: string;
  /** Other resources the answer names, linked the same way (the OpenAPI document only). */
  refers?: ResourceRef[];
  /** JSON Schema keywords the body gets in the OpenAPI document beyond its params rules. */
  bodyRules?: Record<string, unknown>;
  /** JSON Schema keywords a field gets in the OpenAPI document beyond its params rule, from the config. */
  limits?: (config: DocConfig) => Record<string, Record<string, unknown>>;
}

/** The Location of a created resource, from the answer. */
export function locationOf(ref: ResourceRef, data: unknown): string {
  return ref.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = pointer(data, ref.params[name] ?? "");
    return encodeURIComponent(String(value));
  });
}

function pointer(data: unknown, path: string): unknown {
  let at = data;
  for (const key of path.split("/").slice(1)) at = (at as Record<string, unknown> | undefined)?.[key];
  return at;
}

export const ROUTES: RouteDef[] = [
  {
    method: "POST",
    path: "/auth/register",
    action: "auth.register",
    auth: false,
    status: 201,
    summary: "Create an account and sign in",
    tag: "auth",
    errors: [409, 429],
    location: { path: "/users/:id", params: { id: "/user/id" } },
  },
  {
    method: "POST",
    path: "/auth/login",
    action: "auth.login",
    auth: false,
    status: 200,
    summary: "Sign in with email or username and password",
    tag: "auth",
    errors: [401, 429],
  },
  {
    method: "POST",
    path: "/auth/refresh",
    action: "auth.refresh",
    auth: false,
    status: 200,
    summary: "Trade a refresh token for a new token pair (the old refresh token is spent)",
    tag: "auth",
    errors: [401],
  },
  {
    method: "POST",
    path: "/auth/logout",
    action: "auth.logout",
    auth: true,
    status: 204,
    summary: "Revoke the caller's session",
    tag: "auth",
    errors: [401],
  },
  {
    method: "POST",
    path: "/auth/logout-all",
    action: "auth.logoutAll",
    auth: true,
    status: 204,
    summary: "Revoke every session of the caller",
    tag: "auth",
    errors: [401],
  },
  {
    method: "GET",
    path: "/auth/sessions",
    action: "auth.sessions",
    auth: true,
    status: 200,
    summary: "List the caller's live sessions",
    tag: "auth",
    errors: [401],
    refers: [{ path: "/auth/sessions/:id", params: { id: "/sessions/0/id" } }],
  },
  {
    method: "DELETE",
    path: "/auth/sessions/:id",
    action: "auth.revokeSession",
    auth: true,
    status: 204,
    summary: "Revoke one of the caller's sessions",
    tag: "auth",
    errors: [401, 404],
  },
  {
    method: "POST",
    path: "/auth/verify-email",
    action: "auth.verifyEmail",
    auth: false,
    status: 204,
    summary: "Confirm an email address (or an email change) with the token its mail carried",
    tag: "auth",
    errors: [409, 429],
  },
  {
    method: "POST",
    path: "/auth/verify-email/resend",
    action: "auth.resendVerification",
    auth: true,
    status: 202,
    summary: "Mail the verification link again",
    tag: "auth",
    errors: [409, 429],
  },
  {
    method: "POST",
    path: "/auth/email",
    action: "auth.changeEmail",
    auth: true,
    status: 202,
    summary: "Ask to change the email address: a link goes to the new one, a notice to the old",
    tag: "auth",
    errors: [403, 409, 429],
  },
  {
    method: "POST",
    path: "/auth/password-reset",
    action: "auth.requestPasswordReset",
    auth: false,
    status: 202,
    summary: "Mail a password reset link (the same answer whether or not the account exists)",
    tag: "auth",
    errors: [429],
  },
  {
    method: "POST",
    path: "/auth/password-reset/confirm",
    action: "auth.confirmPasswordReset",
    auth: false,
    status: 204,
    summary: "Set a new password with a mailed reset token; every session is revoked",
    tag: "auth",
    errors: [429],
  },
  {
    method: "POST",
    path: "/auth/password",
    action: "auth.changePassword",
    auth: true,
    status: 204,
    summary: "Change the password; the caller's other sessions are revoked",
    tag: "auth",
    errors: [403, 429],
  },
  {
    method: "GET",
    path: "/auth/account",
    action: "auth.account",
    auth: true,
    status: 200,
    summary: "The caller's account: email, its verification and two-factor state",
    tag: "auth",
    errors: [],
  },
  {
    method: "POST",
    path: "/auth/2fa/setup",
    action: "auth.mfaSetup",
    auth: true,
    status: 200,
    summary: "Start two-factor setup: a new TOTP secret and its otpauth:// URI",
    tag: "auth",
    errors: [409],
  },
  {
    method: "POST",
    path: "/auth/2fa/enable",
    action: "auth.mfaEnable",
    auth: true,
    status: 200,
    summary: "Turn two-factor authentication on with a code; answers 10 recovery codes",
    tag: "auth",
    errors: [403, 409],
  },
  {
    method: "POST",
    path: "/auth/2fa/verify",
    action: "auth.mfaVerify",
    auth: false,
    status: 200,
    summary: "Finish a login that asked for a second factor: a code or a recovery code",
    tag: "auth",
    errors: [401, 429],
  },
  {
    method: "POST",
    path: "/auth/2fa/disable",
    action: "auth.mfaDisable",
    auth: true,
    status: 204,
    summary: "Turn two-factor authentication off with the password and a code",
    tag: "auth",
    errors: [403, 409],
  },
  {
    method: "GET",
    path: "/.well-known/jwks.json",
    action: "auth.jwks",
    auth: false,
    status: 200,
    summary: "Public keys that verify access tokens",
    tag: "auth",
    errors: [],
  },
  {
    method: "GET",
    path: "/users/me",
    action: "profile.me",
    auth: true,
    status: 200,
    summary: "The caller's own profile, with email",
    tag: "users",
    errors: [401],
    refers: [
      { path: "/users/:id", params: { id: "/id" } },
      { path: "/users/by-username/:username", params: { username: "/username" } },
    ],
  },
  {
    method: "PATCH",
    path: "/users/me",
    action: "profile.update",
    auth: true,
    status: 200,
    summary: "Change displayName, bio or avatarUrl",
    tag: "users",
    errors: [401],
    // At least one of the three.
    bodyRules: { minProperties: 1 },
  },
  {
    method: "GET",
    path: "/users/by-username/:username",
    action: "profile.byUsername",
    auth: true,
    status: 200,
    summary: "A public profile by username (case-insensitive)",
    tag: "users",
    errors: [401, 404],
  },
  {
    method: "GET",
    path: "/users/:id",
    action: "profile.get",
    auth: true,
    status: 200,
    summary: "A public profile by id",
    tag: "users",
    errors: [401, 404],
  },
  {
    method: "GET",
    path: "/users",
    action: "profile.search",
    auth: true,
    status: 200,
    summary: "Users whose username starts with q, by username, with a cursor",
    tag: "users",
    errors: [401],
  },
  {
    method: "POST",
    path: "/chats",
    action: "chat.open",
    auth: true,
    status: 201,
    summary: "Open the direct chat with a user (200 if it exists) or create a group",
    tag: "chats",
    errors: [401, 404],
    location: { path: "/chats/:id", params: { id: "/id" } },
    existing: "The direct chat of the pair, which existed already",
    // The caller is a member; the group's other members number at most CHAT_MAX_GROUP_MEMBERS - 1.
    limits: (c) => ({ memberIds: { maxItems: c.chat.maxGroupMembers - 1 } }),
  },
  {
    method: "GET",
    path: "/chats",
    action: "chat.list",
    auth: true,
    status: 200,
    summary: "The caller's chats by last activity, a page at a time, with unread and mention counts",
    tag: "chats",
    errors: [401],
  },
  {
    method: "GET",
    path: "/chats/:id",
    action: "chat.get",
    auth: true,
    status: 200,
    summary: "One chat of the caller",
    tag: "chats",
    errors: [401, 403],
  },
  {
    method: "POST",
    path: "/chats/:id/members",
    action: "chat.addMember",
    auth: true,
    status: 200,
    summary: "Add a member to a group (owner only)",
    tag: "chats",
    errors: [401, 403, 404],
    // A link from the new chat would pass its id with a made-up userId, whose 404 (USER_NOT_FOUND)
    // a stateful fuzzer reads as the chat not being found.
    unlinked: "the body names another user, which no answer leading here gives",
  },
  {
    method: "DELETE",
    path: "/chats/:id/members/:userId",
    action: "chat.removeMember",
    auth: true,
    status: 204,
    summary: "Remove a member (owner), or leave (oneself)",
    tag: "chats",
    errors: [401, 403, 404],
  },
  {
    method: "GET",
    path: "/chats/:id/messages",
    action: "chat.history",
    auth: true,
    status: 200,
    summary: "Messages by seq, ascending, before or after a seq",
    tag: "chats",
    errors: [401, 403],
  },
  {
    method: "POST",
    path: "/chats/:id/messages",
    action: "chat.send",
    auth: true,
    status: 201,
    summary: "Send a message; a resend with the same clientMsgId answers the first one",
    tag: "chats",
    errors: [401, 403],
    location: { path: "/chats/:id/messages/:messageId", params: { id: "/chatId", messageId: "/id" } },
    existing: "The message first sent with this clientMsgId",
    limits: (c) => ({ message: { maxLength: c.chat.maxMessageLength } }),
    // Text that is not only white space, or none ("") when the message holds files.
    bodyRules: {
      anyOf: [
        { properties: { message: { pattern: NON_WS } } },
        { required: ["attachmentIds"], properties: { message: { const: "" } } },
      ],
    },
  },
  {
    method: "PATCH",
    path: "/chats/:id/messages/:messageId",
    action: "chat.edit",
    auth: true,
    status: 200,
    summary: "Edit one's own message",
    tag: "chats",
    errors: [401, 403, 404],
    limits: (c) => ({ message: { maxLength: c.chat.maxMessageLength } }),
    // "" only for a message that holds files (422 otherwise), which the schema cannot know.
    bodyRules: { allOf: [{ properties: { message: { anyOf: [{ pattern: NON_WS }, { const: "" }] } } }] },
  },
  {
    method: "DELETE",
    path: "/chats/:id/messages/:messageId",
    action: "chat.delete",
    auth: true,
    status: 204,
    summary: "Delete one's own message (a tombstone stays)",
    tag: "chats",
    errors: [401, 403, 404],
  },
  {
    method: "POST",
    path: "/chats/:id/read",
    action: "chat.read",
    auth: true,
    status: 204,
    summary: "Mark the chat read up to a seq",
    tag: "chats",
    errors: [401, 403],
  },
  {
    method: "PUT",
    path: "/chats/:id/messages/:messageId/reactions/:emoji",
    action: "chat.react",
    auth: true,
    status: 204,
    summary: "Add the caller's reaction (one emoji, URL-encoded) to a message; idempotent",
    tag: "chats",
    errors: [401, 403, 404],
  },
  {
    method: "DELETE",
    path: "/chats/:id/messages/:messageId/reactions/:emoji",
    action: "chat.unreact",
    auth: true,
    status: 204,
    summary: "Remove the caller's reaction from a message; idempotent",
    tag: "chats",
    errors: [401, 403, 404],
  },
  {
    method: "PUT",
    path: "/chats/:id/mute",
    action: "chat.mute",
    auth: true,
    status: 204,
    summary: "Mute the chat for the caller until a time, or always (until: null)",
    tag: "chats",
    errors: [401, 403],
  },
  {
    method: "DELETE",
    path: "/chats/:id/mute",
    action: "chat.unmute",
    auth: true,
    status: 204,
    summary: "Unmute the chat for the caller; idempotent",
    tag: "chats",
    errors: [401, 403],
  },
  {
    method: "GET",
    path: "/chats/:id/pins",
    action: "chat.pins",
    auth: true,
    status: 200,
    summary: "The chat's pinned messages, newest pin first (at most 50)",
    tag: "chats",
    errors: [401, 403],
  },
  {
    method: "PUT",
    path: "/chats/:id/pins/:messageId",
    action: "chat.pin",
    auth: true,
    status: 204,
    summary: "Pin a message (any member of a direct chat, the owner of a group); idempotent",
    tag: "chats",
    errors: [401, 403, 404],
  },
  {
    method: "DELETE",
    path: "/chats/:id/pins/:messageId",
    action: "chat.unpin",
    auth: true,
    status: 204,
    summary: "Unpin a message; idempotent",
    tag: "chats",
    errors: [401, 403, 404],
  },
  {
    method: "GET",
    path: "/users/me/blocks",
    action: "chat.blocks",
    auth: true,
    status: 200,
    summary: "The users the caller blocks, as public profiles",
    tag: "users",
    errors: [401],
  },
  {
    method: "PUT",
    path: "/users/me/blocks/:userId",
    action: "chat.block",
    auth: true,
    status: 204,
    summary: "Block a user: no direct chat, typing or presence between the two; idempotent",
    tag: "users",
    errors: [401, 404],
  },
  {
    method: "DELETE",
    path: "/users/me/blocks/:userId",
    action: "chat.unblock",
    auth: true,
    status: 204,
    summary: "Lift a block; idempotent",
    tag: "users",
    errors: [401, 404],
  },
  {
    method: "DELETE",
    path: "/users/me",
    action: "auth.deleteAccount",
    auth: true,
    status: 204,
    summary: "Delete the caller's account (password, and a code when two-factor is on)",
    tag: "users",
    errors: [403],
    bodyParams: true,
  },
  {
    method: "GET",
    path: "/push/vapid-public-key",
    action: "chat.pushKey",
    auth: false,
    status: 200,
    summary: "The VAPID public key browsers subscribe to pushes with",
    tag: "push",
    errors: [],
  },
  {
    method: "POST",
    path: "/push/subscriptions",
    action: "chat.pushSubscribe",
    auth: true,
    status: 201,
    summary: "Register a browser's push subscription for the caller",
    tag: "push",
    errors: [],
    existing: "The subscription was already registered",
    // A subscription is named by its endpoint within the collection (DELETE takes it in the body).
    location: { path: "/push/subscriptions", params: {} },
  },
  {
    method: "DELETE",
    path: "/push/subscriptions",
    action: "chat.pushUnsubscribe",
    auth: true,
    status: 204,
    summary: "Remove one push subscription of the caller, by endpoint",
    tag: "push",
    errors: [],
    bodyParams: true,
  },
];
