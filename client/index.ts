/**
 * @social/client: the platform's SDK. ApiClient wraps the REST API (sign-in with token refresh,
 * two-factor sign-in, account settings, export and deletion, Web Push subscriptions, profiles,
 * chats and every chat feature); ChatSocket keeps the live WebSocket (resume, gap
 * filling, a send queue acknowledged once per message); the wire types are the server's own.
 */
export type { BlockedIds } from "./blocking.ts";
export { markBlockedSender, markBlockedSenders } from "./blocking.ts";
export type { Ack, ChatSocketOptions } from "./chat-socket.ts";
export { ChatSocket } from "./chat-socket.ts";
export type {
  ApiErrorBody,
  ApiResponse,
  DeleteAccountInput,
  LoginResult,
  MfaAnswer,
  RetryOptions,
  Session,
  ThumbSize,
  UploadBody,
  UploadOptions,
} from "./rest-client.ts";
export { ApiClient, ApiError, DEFAULT_RETRY, expectSession, isMfaChallenge } from "./rest-client.ts";
export type * from "./types.ts";
