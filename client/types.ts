/**
 * The wire types: what the REST API answers and the WebSocket pushes, as every client sees them.
 * They live here, in the client package, so the client builds on its own; the server imports them
 * (lib/contracts.ts re-exports them), never the other way round.
 */

export interface MessageView {
  id: string;
  chatId: string;
  seq: number;
  senderId: string;
  message: string;
  clientMsgId: string;
  createdAt: string;
  editedAt?: string;
  deleted?: boolean;
  /** The message this one answers, as it is now (present on replies only). */
  replyTo?: ReplyRef;
  /** Reactions in the order each emoji was first used; empty when none. */
  reactions: ReactionView[];
  /** The members `@username` named when the message was stored (or last edited). */
  mentions: string[];
  /** The files sent with the message, in the order given; empty when none (and once deleted). */
  attachments: AttachmentView[];
}

/**
 * A file attached to a message. `width`/`height` (px) are there for raster images only. Its bytes
 * are at `GET /files/{id}` (see ApiClient.fileUrl), thumbnails of raster images at `?thumb=N`.
 */
export interface AttachmentView {
  id: string;
  name: string;
  /** Bytes. */
  size: number;
  /** The type found from the bytes (the uploader's claim is ignored). */
  contentType: string;
  width?: number;
  height?: number;
}

/** What `POST /uploads` answers: the stored file, to attach by `id` (sha256 in lower-case hex). */
export type UploadView = AttachmentView & { sha256: string; createdAt: string };

/** What a reply shows of its original: `preview` is its first 200 characters, empty once deleted. */
export interface ReplyRef {
  id: string;
  seq: number;
  senderId: string;
  preview: string;
  deleted: boolean;
}

/** One emoji's reactions on a message: `userIds` are the first 50 who used it. */
export interface ReactionView {
  emoji: string;
  count: number;
  userIds: string[];
}

/** A pinned message of a chat, newest pin first in `GET /chats/:id/pins`. */
export interface PinView {
  message: MessageView;
  pinnedBy: string;
  pinnedAt: string;
}

export interface ChatView {
  id: string;
  type: "direct" | "group";
  name: string | null;
  ownerId: string | null;
  members: string[];
  lastMessage: MessageSummary | null;
  /** Messages after the caller's read mark (the chat list and `GET /chats/:id`). */
  unreadCount?: number;
  /** Of those, the ones that mention the caller. */
  mentionCount?: number;
  /** Whether the caller muted the chat (until `mutedUntil`, or always when that is null). */
  muted: boolean;
  mutedUntil: string | null;
  createdAt: string;
}

export interface MessageSummary {
  id: string;
  seq: number;
  senderId: string;
  message: string;
  createdAt: string;
  deleted?: boolean;
}

export interface UserView {
  id: string;
  email: string;
  /** Whether the address was confirmed through the link mailed to it. */
  emailVerified: boolean;
  username: string;
  displayName: string;
  createdAt: string;
}

/** What a login answers for an account with two-factor authentication on, instead of tokens. */
export interface MfaChallenge {
  mfaRequired: true;
  /** Trade it with a code at POST /auth/2fa/verify, within `expiresIn` seconds; it opens nothing else. */
  mfaToken: string;
  expiresIn: number;
}

/** The caller's account as the auth service keeps it (GET /auth/account). */
export interface AccountView {
  id: string;
  email: string;
  emailVerified: boolean;
  mfaEnabled: boolean;
  /** Unused recovery codes left; 0 when two-factor authentication is off. */
  recoveryCodesLeft: number;
  createdAt: string;
}

/** A push subscription of a browser, as the Push API gives it (PushSubscription.toJSON()). */
export interface PushSubscriptionInput {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface PublicProfile {
  id: string;
  username: string;
  displayName: string;
  bio: string | null;
  avatarUrl: string | null;
  createdAt: string;
  /** Present (true) on the profile of a deleted account: displayName "Deleted user", username "". */
  deleted?: true;
}

export interface OwnProfile extends PublicProfile {
  email: string;
  emailVerified: boolean;
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

export interface PresenceView {
  userId: string;
  status: "online" | "offline";
  lastSeen: string | null;
}

/** A frame the server pushes to WebSocket clients (api.md, "Server to client"). */
export type ServerFrame =
  | ({ type: "new_message" | "message_edited" | "message_deleted" } & MessageView)
  | { type: "typing"; chatId: string; userId: string }
  | { type: "read"; chatId: string; userId: string; seq: number }
  | {
      type: "reaction";
      chatId: string;
      messageId: string;
      emoji: string;
      userId: string;
      op: "add" | "remove";
      count: number;
    }
  | { type: "pins_changed"; chatId: string; messageId: string; userId: string; op: "add" | "remove" }
  | ({ type: "presence" } & PresenceView);

// What follows is the client's own vocabulary over the wire types above (no server imports these).

/** One page of `GET /chats`: pass `nextCursor` back for the next one while `hasMore`. */
export interface ChatPage {
  chats: ChatView[];
  hasMore: boolean;
  nextCursor: string | null;
}

/** One page of `GET /chats/:id/messages`, ascending by seq. */
export interface MessagePage {
  messages: MessageView[];
  hasMore: boolean;
}

/**
 * How a message is sent (REST and WebSocket alike): `clientMsgId` makes a resend answer the first
 * message instead of storing another (one is made up when absent); `replyTo` names the message of
 * the same chat this one answers; `attachmentIds` (1-10 unique ids of the caller's own uploads)
 * attach files, and with them the text may be empty.
 */
export interface SendOptions {
  clientMsgId?: string;
  replyTo?: string;
  attachmentIds?: string[];
}

/**
 * A message as the SDK hands it out: `blockedSender` is true when the caller blocks its sender, so
 * a client can fold it (in groups the server still delivers such messages).
 */
export type ClientMessage = MessageView & { blockedSender?: boolean };

/** A member reacted or took a reaction back; `count` is the emoji's count after the change. */
export type ReactionFrame = Extract<ServerFrame, { type: "reaction" }>;
/** A pin of the chat was added or removed (also when deleting a pinned message removed it). */
export type PinsChangedFrame = Extract<ServerFrame, { type: "pins_changed" }>;
/** A member's read mark moved (also after their own send). */
export type ReadFrame = Extract<ServerFrame, { type: "read" }>;
