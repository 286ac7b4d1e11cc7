/**
 * The typed boundary between nodes: each action's params schema (fastest-validator, used by the
 * service that owns the action and by the gateway's OpenAPI generator) and its result type, plus
 * the events. `call()` checks names, params and results at build time.
 */
import type { Context, ServiceBroker } from "moleculer";
import type {
  AccountView,
  ChatView,
  MessageView,
  MfaChallenge,
  OwnProfile,
  PinView,
  PresenceView,
  PublicProfile,
  PushSubscriptionInput,
  ServerFrame,
  SessionView,
  TokenPair,
  UploadView,
  UserView,
} from "../client/types.ts";
import { exactlyOneOf, text, variantsBy } from "./param-rules.ts";

// The wire types clients see are declared in the client package (client/types.ts), which builds
// without the server; they are re-exported here so every server import stays as it was.
export type {
  AccountView,
  AttachmentView,
  ChatView,
  MessageSummary,
  MessageView,
  MfaChallenge,
  OwnProfile,
  PinView,
  PresenceView,
  PublicProfile,
  PushSubscriptionInput,
  ReactionView,
  ReplyRef,
  ServerFrame,
  SessionView,
  TokenPair,
  UploadView,
  UserView,
} from "../client/types.ts";

const email = { type: "email", max: 254, normalize: true } as const;
const username = {
  type: "string",
  min: 3,
  max: 32,
  pattern: "^[A-Za-z0-9_]+$",
  messages: { stringPattern: "The '{field}' field may hold only the letters A-Z and a-z, digits and _" },
} as const;
// The 8-character minimum counts characters after NFKC (AuthLogic checks it; docs/api.md), which a
// JSON Schema length cannot say: "½" is one character as sent and three after it.
const password = text({ min: 1, max: 1024 });
const displayName = text({ min: 1, max: 64, trim: true });
const id = {
  type: "string",
  min: 1,
  max: 64,
  pattern: "^[A-Za-z0-9_-]+$",
  messages: { stringPattern: "The '{field}' field may hold only the letters A-Z and a-z, digits, _ and -" },
} as const;
/** A token mailed in a link: opaque, base64url. */
const mailedToken = text({ min: 1, max: 128 });
const totpCode = {
  type: "string",
  pattern: "^[0-9]{6}$",
  messages: { stringPattern: "The '{field}' field must be the 6 digits the authenticator app shows" },
} as const;
const recoveryCode = text({ min: 1, max: 64 });
const seq = { type: "number", integer: true, min: 1, max: Number.MAX_SAFE_INTEGER, convert: true } as const;
const clientMsgId = {
  type: "string",
  min: 1,
  max: 64,
  pattern: "^[A-Za-z0-9_.:-]+$",
  messages: {
    stringPattern: "The '{field}' field may hold only the letters A-Z and a-z, digits and _ . : -",
  },
} as const;

export const PARAMS = {
  "auth.register": {
    $$strict: true,
    email,
    username,
    password,
    displayName: { ...displayName, optional: true },
  },
  "auth.login": exactlyOneOf(["email", "username"], {
    email: { ...email, optional: true },
    username: { ...username, optional: true },
    password,
  }),
  "auth.refresh": { $$strict: true, refreshToken: text({ min: 1, max: 256 }) },
  "auth.logout": { $$strict: true },
  "auth.logoutAll": { $$strict: true },
  "auth.sessions": { $$strict: true },
  "auth.revokeSession": { $$strict: true, id },
  "auth.jwks": { $$strict: true },
  "auth.verifyEmail": { $$strict: true, token: mailedToken },
  "auth.resendVerification": { $$strict: true },
  "auth.changeEmail": { $$strict: true, newEmail: email, password },
  "auth.requestPasswordReset": { $$strict: true, email },
  "auth.confirmPasswordReset": { $$strict: true, token: mailedToken, password },
  "auth.changePassword": { $$strict: true, currentPassword: password, newPassword: password },
  "auth.account": { $$strict: true },
  "auth.mfaSetup": { $$strict: true },
  "auth.mfaEnable": { $$strict: true, code: totpCode },
  "auth.mfaVerify": exactlyOneOf(["code", "recoveryCode"], {
    // A signed token (an EdDSA JWT of its own type; signing-keys.ts), a few hundred characters.
    mfaToken: text({ min: 1, max: 2048 }),
    code: { ...totpCode, optional: true },
    recoveryCode: { ...recoveryCode, optional: true },
  }),
  // `code`: the authenticator's 6 digits or one of the recovery codes.
  "auth.mfaDisable": { $$strict: true, password, code: recoveryCode },
  "auth.deleteAccount": {
    $$strict: true,
    password,
    code: { ...recoveryCode, optional: true },
    eraseMessages: { type: "boolean", optional: true },
  },
  "auth.exportAccount": { $$strict: true },
  "profile.me": { $$strict: true },
  "profile.update": {
    $$strict: true,
    displayName: { ...displayName, optional: true },
    bio: { ...text({ max: 500 }), optional: true, nullable: true },
    avatarUrl: {
      ...text({
        max: 2048,
        pattern: "^https://\\S+$",
        messages: {
          stringPattern: "The 'avatarUrl' field must be an https:// URL without spaces (http:// is refused)",
        },
      }),
      optional: true,
      nullable: true,
    },
  },
  "profile.get": { $$strict: true, id },
  "profile.erase": { $$strict: true, id },
  "profile.setEmail": { $$strict: true, id, email, emailVerified: "boolean" },
  "profile.byUsername": { $$strict: true, username: text({ min: 1, max: 32 }) },
  "profile.getMany": { $$strict: true, ids: { type: "array", items: id, max: 1_000 } },
  "profile.search": {
    $$strict: true,
    q: text({ min: 1, max: 32 }),
    limit: { type: "number", integer: true, min: 1, max: 50, convert: true, optional: true },
    cursor: { ...text({ max: 128 }), optional: true },
  },
  "chat.open": variantsBy(
    "type",
    {
      type: { type: "enum", values: ["direct", "group"] },
      userId: { ...id, optional: true },
      name: { ...text({ min: 1, max: 100, trim: true }), optional: true },
      memberIds: { type: "array", items: id, max: 1000, optional: true },
    },
    { direct: ["userId"], group: ["name", "memberIds?"] },
  ),
  "chat.list": {
    $$strict: true,
    limit: { type: "number", integer: true, min: 1, max: 200, convert: true, optional: true },
    cursor: { ...text({ min: 1, max: 512 }), optional: true },
  },
  "chat.get": { $$strict: true, id },
  "chat.addMember": { $$strict: true, id, userId: id },
  "chat.removeMember": { $$strict: true, id, userId: id },
  "chat.history": {
    $$strict: true,
    id,
    before: { ...seq, optional: true },
    after: { ...seq, min: 0, optional: true },
    limit: { type: "number", integer: true, min: 1, max: 200, convert: true, optional: true },
  },
  // `message` may be "" when the message holds files (ChatLogic checks; docs/api.md).
  "chat.send": {
    $$strict: true,
    id,
    message: { type: "string", max: 100_000 },
    clientMsgId,
    replyTo: { ...id, optional: true },
    attachmentIds: { type: "array", items: id, min: 1, max: 10, optional: true },
  },
  "chat.edit": { $$strict: true, id, messageId: id, message: { type: "string", max: 100_000 } },
  "chat.delete": { $$strict: true, id, messageId: id },
  "chat.read": { $$strict: true, id, seq: { ...seq, convert: false } },
  // One emoji (a single grapheme Unicode calls an emoji); ChatLogic checks what a length cannot.
  "chat.react": { $$strict: true, id, messageId: id, emoji: text({ min: 1, max: 64 }) },
  "chat.unreact": { $$strict: true, id, messageId: id, emoji: text({ min: 1, max: 64 }) },
  "chat.block": { $$strict: true, userId: id },
  "chat.unblock": { $$strict: true, userId: id },
  "chat.blocks": { $$strict: true },
  // `until`: an ISO 8601 time in the future, or null for always.
  "chat.mute": {
    $$strict: true,
    id,
    until: {
      ...text({
        min: 1,
        max: 40,
        pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$",
        messages: { stringPattern: "The 'until' field must be an ISO 8601 time with its offset, or null" },
      }),
      nullable: true,
    },
  },
  "chat.unmute": { $$strict: true, id },
  "chat.pin": { $$strict: true, id, messageId: id },
  "chat.unpin": { $$strict: true, id, messageId: id },
  "chat.pins": { $$strict: true, id },
  // What the gateway calls around the bytes of an upload it streams to the blob store.
  "chat.uploadBegin": {
    $$strict: true,
    name: { type: "string", min: 1, max: 255 },
    contentType: { type: "string", min: 1, max: 255 },
    declaredSize: { type: "number", integer: true, min: 0, optional: true },
  },
  "chat.uploadCommit": {
    $$strict: true,
    id,
    size: { type: "number", integer: true, min: 0 },
    sha256: { type: "string", length: 64, pattern: "^[0-9a-f]+$" },
    width: { type: "number", integer: true, min: 1, optional: true },
    height: { type: "number", integer: true, min: 1, optional: true },
  },
  "chat.uploadAbort": { $$strict: true, id },
  "chat.fileAccess": { $$strict: true, id },
  "chat.pushKey": { $$strict: true },
  "chat.pushSubscribe": {
    $$strict: true,
    endpoint: text({ min: 1, max: 2048 }),
    keys: {
      type: "object",
      strict: true,
      props: {
        p256dh: text({ min: 1, max: 128, pattern: "^[A-Za-z0-9_-]+=*$" }),
        auth: text({ min: 1, max: 64, pattern: "^[A-Za-z0-9_-]+=*$" }),
      },
    },
  },
  "chat.pushUnsubscribe": { $$strict: true, endpoint: text({ min: 1, max: 2048 }) },
  "chat.eraseUser": { $$strict: true, userId: id, eraseMessages: "boolean" },
  "chat.exportUser": {
    $$strict: true,
    userId: id,
    after: { ...text({ max: 512 }), optional: true },
    limit: { type: "number", integer: true, min: 1, max: 1000, optional: true },
  },
} as const;

/** A file the caller may read, as the gateway needs it to stream it (`key`: where its bytes are). */
export interface FileAccess {
  id: string;
  key: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
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
    result: ({ user: UserView } & TokenPair) | MfaChallenge;
  };
  "auth.verifyEmail": { params: { token: string }; result: null };
  "auth.resendVerification": { params: Record<string, never>; result: null };
  "auth.changeEmail": { params: { newEmail: string; password: string }; result: null };
  "auth.requestPasswordReset": { params: { email: string }; result: null };
  "auth.confirmPasswordReset": { params: { token: string; password: string }; result: null };
  "auth.changePassword": { params: { currentPassword: string; newPassword: string }; result: null };
  "auth.account": { params: Record<string, never>; result: AccountView };
  "auth.mfaSetup": { params: Record<string, never>; result: { secret: string; uri: string } };
  "auth.mfaEnable": { params: { code: string }; result: { recoveryCodes: string[] } };
  "auth.mfaVerify": {
    params: { mfaToken: string; code?: string; recoveryCode?: string };
    result: { user: UserView } & TokenPair;
  };
  "auth.mfaDisable": { params: { password: string; code: string }; result: null };
  "auth.deleteAccount": {
    params: { password: string; code?: string; eraseMessages?: boolean };
    result: null;
  };
  "auth.exportAccount": {
    params: Record<string, never>;
    result: { account: AccountView; sessions: SessionView[] };
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
  "profile.erase": { params: { id: string }; result: null };
  "profile.setEmail": { params: { id: string; email: string; emailVerified: boolean }; result: null };
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
  "profile.getMany": { params: { ids: string[] }; result: { profiles: PublicProfile[] } };
  "profile.ready": { params: Record<string, never>; result: { ok: true } };
  "chat.open": {
    params: { type: "direct" | "group"; userId?: string; name?: string; memberIds?: string[] };
    result: ChatView;
  };
  "chat.list": {
    params: { limit?: number; cursor?: string };
    result: { chats: ChatView[]; hasMore: boolean; nextCursor: string | null };
  };
  "chat.get": { params: { id: string }; result: ChatView };
  "chat.addMember": { params: { id: string; userId: string }; result: ChatView };
  "chat.removeMember": { params: { id: string; userId: string }; result: null };
  "chat.history": {
    params: { id: string; before?: number; after?: number; limit?: number };
    result: { messages: MessageView[]; hasMore: boolean };
  };
  "chat.send": {
    params: { id: string; message: string; clientMsgId: string; replyTo?: string; attachmentIds?: string[] };
    result: MessageView;
  };
  "chat.sendTo": {
    params: {
      recipientId: string;
      message: string;
      clientMsgId: string;
      replyTo?: string;
      attachmentIds?: string[];
    };
    result: MessageView;
  };
  "chat.edit": { params: { id: string; messageId: string; message: string }; result: MessageView };
  "chat.delete": { params: { id: string; messageId: string }; result: null };
  "chat.read": { params: { id: string; seq: number }; result: null };
  "chat.typing": { params: { id: string }; result: null };
  "chat.react": { params: { id: string; messageId: string; emoji: string }; result: null };
  "chat.unreact": { params: { id: string; messageId: string; emoji: string }; result: null };
  "chat.block": { params: { userId: string }; result: null };
  "chat.unblock": { params: { userId: string }; result: null };
  "chat.blocks": { params: Record<string, never>; result: { users: PublicProfile[] } };
  "chat.mute": { params: { id: string; until: string | null }; result: null };
  "chat.unmute": { params: { id: string }; result: null };
  "chat.pin": { params: { id: string; messageId: string }; result: null };
  "chat.unpin": { params: { id: string; messageId: string }; result: null };
  "chat.pins": { params: { id: string }; result: { pins: PinView[] } };
  "chat.resume": { params: { chats: ResumeEntry[] }; result: ResumeAnswer };
  "chat.presence": { params: { userIds: string[] }; result: { presence: PresenceView[] } };
  "chat.uploadBegin": {
    params: { name: string; contentType: string; declaredSize?: number };
    result: { id: string; key: string; remainingBytes: number };
  };
  "chat.uploadCommit": {
    params: { id: string; size: number; sha256: string; width?: number; height?: number };
    result: UploadView;
  };
  "chat.uploadAbort": { params: { id: string }; result: null };
  "chat.fileAccess": { params: { id: string }; result: FileAccess };
  "chat.pushKey": { params: Record<string, never>; result: { publicKey: string } };
  "chat.pushSubscribe": { params: PushSubscriptionInput; result: { created: boolean } };
  "chat.pushUnsubscribe": { params: { endpoint: string }; result: null };
  "chat.eraseUser": { params: { userId: string; eraseMessages: boolean }; result: null };
  "chat.exportUser": {
    params: { userId: string; after?: string; limit?: number };
    result: UserDataPage;
  };
  "chat.ready": { params: Record<string, never>; result: { ok: true } };
  "gateway.deliver": { params: { userIds: string[]; frame: ServerFrame }; result: { delivered: number } };
  "gateway.deliverMany": {
    params: { deliveries: { userIds: string[]; frame: ServerFrame }[] };
    result: { delivered: number };
  };
  "gateway.connectedUsers": { params: Record<string, never>; result: { userIds: string[] } & PresenceStamp };
}

/**
 * One page of a user's own data in the chat service, for their export: their chats (on the first
 * page), their own messages and their uploads, oldest first; `next` asks for the page after.
 */
export interface UserDataPage {
  chats: ChatView[];
  messages: MessageView[];
  uploads: UploadView[];
  next: string | null;
}

/** A chat to resume: replay at most `limit` of its messages after `after`. */
export interface ResumeEntry {
  id: string;
  after: number;
  limit: number;
}

/**
 * What `chat.resume` found: the messages to replay (each chat's ascending by seq), the chats whose
 * rest the client pages from the history (`fromSeq` to `toSeq`), the listed ids that are not the
 * caller's chats, and what did not fit in this answer (to ask for again).
 */
export interface ResumeAnswer {
  messages: MessageView[];
  truncated: { chatId: string; fromSeq: number; toSeq: number }[];
  forbidden: string[];
  next: ResumeEntry[];
}

export interface EventMap {
  /** Sessions whose access tokens must stop working now, on every gateway. */
  "auth.sessions.revoked": { revocations: Revocation[] };
  /** A new signing key exists: gateways refetch the JWKS. */
  "auth.keys.rotated": Record<string, never>;
  /** Cached profile records to drop on every node. */
  "profile.cache.clean": { ids: string[] };
  /** A chat's members changed: chat nodes drop the copy they hold for sends. */
  "chat.members.changed": { chatId: string };
  /** A block between two users was made or lifted: chat nodes drop what they hold of either. */
  "chat.blocks.changed": { userIds: string[] };
  /** A user's first WebSocket on a gateway node opened. */
  "ws.online": { nodeId: string; userId: string } & PresenceStamp;
  /** A user's last WebSocket on a gateway node closed. */
  "ws.offline": { nodeId: string; userId: string; at: string } & PresenceStamp;
}

/**
 * Where a gateway's presence news stands: its process (`instance`) and how many online/offline
 * changes it had announced (`version`), on each event and on the list `gateway.connectedUsers`
 * answers, so a chat node can tell a list older than the events it already applied.
 */
export interface PresenceStamp {
  instance: string;
  version: number;
}

/** The user an access token authenticated, as the gateway puts it in `ctx.meta.user`. */
export interface AuthUser {
  id: string;
  sessionId: string;
  /** The access token's `ev` claim: the address was verified when the token was signed. */
  emailVerified?: boolean;
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
  opts?: { meta?: CallMeta; timeout?: number; nodeID?: string; retries?: number },
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
