/**
 * The platform's REST client: the one way the project's own tools (tests, load tools, the web
 * page) talk to the API. It keeps the token pair of a signed-in user and refreshes the access
 * token shortly before it expires, and wraps every chat call (paged chat list, replies,
 * reactions, blocks, mutes, pins, attachments: uploads streamed with progress and file URLs).
 */
import type {
  AccountView,
  AttachmentView,
  ChatPage,
  ChatView,
  MessagePage,
  MessageView,
  MfaChallenge,
  OwnProfile,
  PinView,
  PublicProfile,
  PushSubscriptionInput,
  SendOptions,
  SessionView,
  TokenPair,
  UploadView,
  UserView,
} from "./types.ts";

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    const error = (body as ApiErrorBody | undefined)?.error;
    super(`${status} ${error?.code ?? "ERROR"}: ${error?.message ?? ""}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error?.code ?? "ERROR";
    this.body = body;
  }
}

/** A signed-in answer: register, a login without two-factor authentication, or `verifyMfa`. */
export type Session = { user: UserView } & TokenPair;

/**
 * What `login` answers: the session, or, for an account with two-factor authentication, a
 * challenge to answer with `verifyMfa` (no tokens are kept until then).
 */
export type LoginResult = Session | MfaChallenge;

/** The second step of a login: an app code or one of the recovery codes. */
export type MfaAnswer = { mfaToken: string; code: string } | { mfaToken: string; recoveryCode: string };

/** What `deleteAccount` sends: `code` (app or recovery code) is needed when two-factor authentication is on. */
export interface DeleteAccountInput {
  password: string;
  code?: string;
  eraseMessages?: boolean;
}

/** Whether a login answered a two-factor challenge instead of a session. */
export function isMfaChallenge(res: LoginResult): res is MfaChallenge {
  return (res as Partial<MfaChallenge>).mfaRequired === true;
}

/** The session of a login known to need no second factor; throws on a two-factor challenge. */
export function expectSession(res: LoginResult): Session {
  if (isMfaChallenge(res)) throw new Error("The login asks for a two-factor code");
  return res;
}

/** Refresh when less than this share of the access token's life is left. */
const REFRESH_AT = 0.2;

/**
 * How request() retries: idempotent calls (GET, HEAD, OPTIONS, and the PUT and DELETE routes that
 * api.md calls idempotent) after a network error or a 502, 503 or 504, such as the 503 with
 * Retry-After of an overloaded node; other writes (POST, PATCH, and the DELETEs whose repeat would
 * answer differently) only when the connection was refused, so the server never saw them. Backoff
 * doubles from minDelayMs with jitter, up to maxDelayMs, and follows Retry-After within that cap.
 * `attempts` counts the first try.
 */
export interface RetryOptions {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/**
 * What `upload` sends: a Blob or File (in a browser sent by XMLHttpRequest, which streams the file
 * from disk and reports upload progress), or a stream of bytes (a web ReadableStream, an async
 * iterable such as a Node Readable), sent by fetch as it is read.
 */
export type UploadBody = Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

export interface UploadOptions {
  /** The file name the server stores (it sanitises it); required. */
  name: string;
  /** The exact byte length, when known: sent as Content-Length (a Blob's own size is used for a Blob). */
  size?: number;
  /**
   * Bytes sent so far, as the HTTP stack takes them, never decreasing; the last call has all of
   * them. `total` is the size when known.
   */
  onProgress?(loaded: number, total: number | undefined): void;
  signal?: AbortSignal;
}

/** The thumbnail sizes the server makes of raster images (px, the longer side at most). */
export type ThumbSize = 160 | 320 | 640;

export const DEFAULT_RETRY: RetryOptions = { attempts: 4, minDelayMs: 100, maxDelayMs: 2_000 };
/** Methods whose repeat has the effect of one call (RFC 9110, 9.2.2). */
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
const RETRYABLE_STATUS = new Set([502, 503, 504]);

export class ApiClient {
  readonly baseUrl: string;
  private tokens: (TokenPair & { expiresAt: number }) | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly headers: Record<string, string>;
  private readonly retry: RetryOptions;
  private readonly fetch: typeof fetch;

  /** `fetch` gives the HTTP implementation (tests, instrumented clients); defaults to the global one. */
  constructor(
    baseUrl: string,
    options: {
      headers?: Record<string, string>;
      retry?: Partial<RetryOptions> | false;
      fetch?: typeof fetch;
    } = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.headers = options.headers ?? {};
    // Called unbound: a browser's fetch refuses to run as a method of another object.
    const given = options.fetch;
    this.fetch = (input, init) => (given ? given(input, init) : fetch(input, init));
    this.retry =
      options.retry === false ? { ...DEFAULT_RETRY, attempts: 1 } : { ...DEFAULT_RETRY, ...options.retry };
  }

  get accessToken(): string | undefined {
    return this.tokens?.accessToken;
  }

  get refreshToken(): string | undefined {
    return this.tokens?.refreshToken;
  }

  /** When the access token expires (ms since epoch), or undefined when signed out. */
  get accessTokenExpiresAt(): number | undefined {
    return this.tokens?.expiresAt;
  }

  /** Sends a request as is and answers whatever came back; never throws on a status. */
  async raw<T = unknown>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      rawBody?: string;
      token?: string | null;
      headers?: Record<string, string>;
    } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    const token = options.token === undefined ? this.tokens?.accessToken : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] ??= "application/json";
    const res = await this.fetch(this.baseUrl + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if (text && res.headers.get("content-type")?.includes("json")) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  /**
   * Sends a request with the current (refreshed if due) token, retrying what is safe to retry
   * (see RetryOptions); throws ApiError on 4xx/5xx.
   */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    options: {
      anonymous?: boolean;
      /** False for a PUT or DELETE whose repeat would not answer as the first did (default: by method). */
      idempotent?: boolean;
    } = {},
  ): Promise<T> {
    const idempotent = options.idempotent ?? IDEMPOTENT_METHODS.has(method.toUpperCase());
    for (let attempt = 1; ; attempt++) {
      if (!options.anonymous) await this.refreshIfDue();
      let res: ApiResponse<T>;
      try {
        res = await this.raw<T>(method, path, { body, ...(options.anonymous ? { token: null } : {}) });
      } catch (err) {
        if (attempt >= this.retry.attempts || !retryableFailure(idempotent, err)) throw err;
        await sleep(this.backoff(attempt));
        continue;
      }
      if (res.status < 400) return res.body;
      if (attempt >= this.retry.attempts || !(idempotent && RETRYABLE_STATUS.has(res.status))) {
        throw new ApiError(res.status, res.body);
      }
      await sleep(this.backoff(attempt, retryAfterMs(res.headers)));
    }
  }

  private backoff(attempt: number, atLeastMs = 0): number {
    const exp = Math.min(this.retry.maxDelayMs, this.retry.minDelayMs * 2 ** (attempt - 1));
    return Math.min(this.retry.maxDelayMs, Math.max(atLeastMs, exp * (0.5 + Math.random() / 2)));
  }

  async register(input: {
    email: string;
    username: string;
    password: string;
    displayName?: string;
  }): Promise<Session> {
    const res = await this.request<Session>("POST", "/auth/register", input);
    this.setTokens(res);
    return res;
  }

  /**
   * Signs in. An account with two-factor authentication answers an MfaChallenge instead (see
   * `isMfaChallenge`): nothing is kept then, and `verifyMfa` with its `mfaToken` finishes the login.
   */
  async login(input: { email?: string; username?: string; password: string }): Promise<LoginResult> {
    const res = await this.request<LoginResult>("POST", "/auth/login", input, { anonymous: true });
    if (!isMfaChallenge(res)) this.setTokens(res);
    return res;
  }

  /** The second step of a login: the challenge's `mfaToken` with an app code or a recovery code. */
  async verifyMfa(input: MfaAnswer): Promise<Session> {
    const body =
      "code" in input
        ? { mfaToken: input.mfaToken, code: input.code }
        : { mfaToken: input.mfaToken, recoveryCode: input.recoveryCode };
    const res = await this.request<Session>("POST", "/auth/2fa/verify", body, { anonymous: true });
    this.setTokens(res);
    return res;
  }

  /**
   * Follows a mailed verification (or email change) link's token. Signed in, the tokens are then
   * refreshed once, since only a newly signed access token says the address is verified.
   */
  async verifyEmail(token: string): Promise<void> {
    await this.request("POST", "/auth/verify-email", { token }, { anonymous: true });
    if (this.tokens) await this.refresh();
  }

  /** Mails a new verification link (409 EMAIL_ALREADY_VERIFIED when there is nothing to verify). */
  async resendVerification(): Promise<void> {
    await this.request("POST", "/auth/verify-email/resend", {});
  }

  /** Asks to change the address: the link goes to `newEmail`, which counts once it is followed. */
  async changeEmail(newEmail: string, password: string): Promise<void> {
    await this.request("POST", "/auth/email", { newEmail, password });
  }

  /** Mails a reset link when the address is an account's; the answer is the same either way. */
  async requestPasswordReset(email: string): Promise<void> {
    await this.request("POST", "/auth/password-reset", { email }, { anonymous: true });
  }

  /** Sets a new password with a mailed reset link's token; every session of the account ends. */
  async confirmPasswordReset(token: string, password: string): Promise<void> {
    await this.request("POST", "/auth/password-reset/confirm", { token, password }, { anonymous: true });
  }

  /** Changes the signed-in user's password; their other sessions end, this one goes on. */
  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    await this.request("POST", "/auth/password", { currentPassword, newPassword });
  }

  /** The account as the auth service keeps it: verification and two-factor state. */
  account(): Promise<AccountView> {
    return this.request("GET", "/auth/account");
  }

  /** Starts two-factor setup: a new secret and its otpauth:// URI (to show as a QR code). */
  mfaSetup(): Promise<{ secret: string; uri: string }> {
    return this.request("POST", "/auth/2fa/setup", {});
  }

  /** Turns two-factor authentication on with the app's current code; answers the 10 recovery codes, shown once. */
  mfaEnable(code: string): Promise<{ recoveryCodes: string[] }> {
    return this.request("POST", "/auth/2fa/enable", { code });
  }

  /** Turns two-factor authentication off; `code` is an app code or a recovery code. */
  async mfaDisable(password: string, code: string): Promise<void> {
    await this.request("POST", "/auth/2fa/disable", { password, code });
  }

  /** Deletes the signed-in account (`DELETE /users/me`); the stored tokens are dropped after. */
  async deleteAccount(input: DeleteAccountInput): Promise<void> {
    const body: DeleteAccountInput = { password: input.password };
    if (input.code !== undefined) body.code = input.code;
    if (input.eraseMessages !== undefined) body.eraseMessages = input.eraseMessages;
    // Not repeated: after a deletion that answered late, a repeat would find no account.
    await this.request("DELETE", "/users/me", body, { idempotent: false });
    this.tokens = undefined;
  }

  /** Everything the platform keeps of the caller, as one parsed JSON document (once an hour). */
  exportData(): Promise<Record<string, unknown>> {
    return this.request("GET", "/users/me/export");
  }

  /** The VAPID public key (base64url), the `applicationServerKey` of a push subscription. */
  async pushPublicKey(): Promise<string> {
    const res = await this.request<{ publicKey: string }>("GET", "/push/vapid-public-key", undefined, {
      anonymous: true,
    });
    return res.publicKey;
  }

  /**
   * Registers a browser's push subscription (`PushSubscription.toJSON()` will do: only `endpoint`
   * and `keys` are sent). `created` is false when it was registered already.
   */
  subscribePush(subscription: PushSubscriptionInput): Promise<{ created: boolean }> {
    const { endpoint, keys } = subscription;
    return this.request("POST", "/push/subscriptions", {
      endpoint,
      keys: { p256dh: keys.p256dh, auth: keys.auth },
    });
  }

  /** Removes the caller's subscription with that endpoint; fine when there is none. */
  async unsubscribePush(endpoint: string): Promise<void> {
    await this.request("DELETE", "/push/subscriptions", { endpoint });
  }

  async refresh(): Promise<TokenPair> {
    if (!this.tokens) throw new Error("Not signed in");
    const res = await this.raw<TokenPair>("POST", "/auth/refresh", {
      body: { refreshToken: this.tokens.refreshToken },
      token: null,
    });
    if (res.status !== 200) throw new ApiError(res.status, res.body);
    this.setTokens(res.body);
    return res.body;
  }

  async logout(): Promise<void> {
    await this.request("POST", "/auth/logout", {});
    this.tokens = undefined;
  }

  logoutAll(): Promise<void> {
    return this.request("POST", "/auth/logout-all", {});
  }

  sessions(): Promise<{ sessions: SessionView[] }> {
    return this.request("GET", "/auth/sessions");
  }

  revokeSession(id: string): Promise<void> {
    // A repeat of a revocation that was done answers 404.
    return this.request("DELETE", `/auth/sessions/${encodeURIComponent(id)}`, undefined, {
      idempotent: false,
    });
  }

  me(): Promise<OwnProfile> {
    return this.request("GET", "/users/me");
  }

  updateMe(changes: {
    displayName?: string;
    bio?: string | null;
    avatarUrl?: string | null;
  }): Promise<OwnProfile> {
    return this.request("PATCH", "/users/me", changes);
  }

  user(id: string): Promise<PublicProfile> {
    return this.request("GET", `/users/${encodeURIComponent(id)}`);
  }

  userByUsername(username: string): Promise<PublicProfile> {
    return this.request("GET", `/users/by-username/${encodeURIComponent(username)}`);
  }

  searchUsers(q: string, options: { limit?: number; cursor?: string } = {}) {
    const query = new URLSearchParams({ q });
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    return this.request<{ users: PublicProfile[]; nextCursor: string | null }>("GET", `/users?${query}`);
  }

  /** One page of the caller's chats, by last activity, newest first (`limit` 1-200, default 50). */
  listChats(options: { limit?: number; cursor?: string } = {}): Promise<ChatPage> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    const search = String(query) ? `?${query}` : "";
    return this.request("GET", `/chats${search}`);
  }

  /**
   * Every page of the chat list, in order. The pages follow the first one's snapshot, so a chat
   * that gets a message meanwhile is neither skipped nor listed twice. A cursor lives 30 minutes:
   * a consumer slower than that gets the server's 422 (type `cursorExpired`) and starts over.
   */
  async *allChats(pageSize?: number): AsyncGenerator<ChatPage, void, undefined> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.listChats({ limit: pageSize, cursor });
      yield page;
      // A page without a cursor ends the list too, so a server that forgot one cannot loop us.
      if (!page.hasMore || !page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }

  /** All the caller's chats, every page collected (what the chat list showed before it paged). */
  async chats(pageSize = 200): Promise<ChatView[]> {
    const chats: ChatView[] = [];
    for await (const page of this.allChats(pageSize)) chats.push(...page.chats);
    return chats;
  }

  chat(chatId: string): Promise<ChatView> {
    return this.request("GET", chatPath(chatId));
  }

  /** Opens the direct chat with a user (the existing one if there is one). */
  openDirect(userId: string): Promise<ChatView> {
    return this.request("POST", "/chats", { type: "direct", userId });
  }

  openGroup(name: string, memberIds: string[] = []): Promise<ChatView> {
    return this.request("POST", "/chats", { type: "group", name, memberIds });
  }

  addMember(chatId: string, userId: string): Promise<ChatView> {
    return this.request("POST", `${chatPath(chatId)}/members`, { userId });
  }

  /** Removes a member (the owner), or leaves the chat (the caller's own id). */
  async removeMember(chatId: string, userId: string): Promise<void> {
    // A repeat of a removal that was done answers 403 or 404.
    await this.request("DELETE", `${chatPath(chatId)}/members/${encodeURIComponent(userId)}`, undefined, {
      idempotent: false,
    });
  }

  /** Messages ascending by seq: the newest page, or the page before or after a seq. */
  history(
    chatId: string,
    options: { before?: number; after?: number; limit?: number } = {},
  ): Promise<MessagePage> {
    const query = new URLSearchParams();
    for (const key of ["before", "after", "limit"] as const) {
      const value = options[key];
      if (value !== undefined) query.set(key, String(value));
    }
    const search = String(query) ? `?${query}` : "";
    return this.request("GET", `${chatPath(chatId)}/messages${search}`);
  }

  /**
   * Sends a message, as a reply when `replyTo` names a message of the same chat. Resending with the
   * same `clientMsgId` answers the first message instead of storing a second one.
   */
  sendMessage(chatId: string, message: string, options: SendOptions = {}): Promise<MessageView> {
    const body: { message: string; clientMsgId: string; replyTo?: string; attachmentIds?: string[] } = {
      message,
      clientMsgId: options.clientMsgId ?? globalThis.crypto.randomUUID(),
    };
    if (options.replyTo !== undefined) body.replyTo = options.replyTo;
    if (options.attachmentIds !== undefined) body.attachmentIds = options.attachmentIds;
    return this.request("POST", `${chatPath(chatId)}/messages`, body);
  }

  /**
   * Uploads a file (`POST /uploads?name=`), to attach by the answer's `id` to a message
   * (`attachmentIds`). Nothing is read into memory first: a Blob goes by XMLHttpRequest in a
   * browser, anything else through fetch as a streamed (`duplex: "half"`) body, and `onProgress`
   * follows the bytes as they go. An upload is never retried (a stream cannot be read twice);
   * refusals throw ApiError: 413 UPLOAD_TOO_LARGE / UPLOAD_QUOTA_EXCEEDED, 415
   * UPLOAD_TYPE_NOT_ALLOWED, 422 VALIDATION_FAILED, 503 SERVICE_UNAVAILABLE.
   */
  async upload(body: UploadBody, options: UploadOptions): Promise<UploadView> {
    await this.refreshIfDue();
    const url = `${this.baseUrl}/uploads?name=${encodeURIComponent(options.name)}`;
    const headers: Record<string, string> = { ...this.headers };
    const token = this.tokens?.accessToken;
    if (token) headers.authorization = `Bearer ${token}`;
    const isBlob = typeof Blob !== "undefined" && body instanceof Blob;
    const Xhr = (globalThis as { XMLHttpRequest?: new () => Xhr }).XMLHttpRequest;
    if (isBlob && Xhr) return xhrUpload(new Xhr(), url, headers, body, options);

    const total = isBlob ? body.size : options.size;
    headers["content-type"] = (isBlob && body.type) || "application/octet-stream";
    if (total !== undefined) headers["content-length"] = String(total);
    const source = isBlob ? body.stream() : (body as ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>);
    const stream = countingStream(source, (loaded) => options.onProgress?.(loaded, total));
    const init = { method: "POST", headers, body: stream, duplex: "half", signal: options.signal };
    const res = await this.fetch(url, init as RequestInit);
    return uploadAnswer(res.status, res.headers.get("content-type"), await res.text());
  }

  /**
   * The URL of a file (an attachment or its id) for `<img src>`, `<video src>` or `<a href>`: the
   * current access token goes in the query (`access_token`), since such elements send no header,
   * so the URL works only as long as that token does (make it again after a refresh). `thumb`
   * asks for a WebP thumbnail of a raster image.
   */
  fileUrl(file: string | Pick<AttachmentView, "id">, options: { thumb?: ThumbSize } = {}): string {
    const id = typeof file === "string" ? file : file.id;
    const query = new URLSearchParams();
    const token = this.tokens?.accessToken;
    if (token) query.set("access_token", token);
    if (options.thumb !== undefined) query.set("thumb", String(options.thumb));
    const search = String(query) ? `?${query}` : "";
    return `${this.baseUrl}/files/${encodeURIComponent(id)}${search}`;
  }

  editMessage(chatId: string, messageId: string, message: string): Promise<MessageView> {
    return this.request("PATCH", messagePath(chatId, messageId), { message });
  }

  async deleteMessage(chatId: string, messageId: string): Promise<void> {
    // A repeat of a deletion that was done may no longer find the message as its sender's.
    await this.request("DELETE", messagePath(chatId, messageId), undefined, { idempotent: false });
  }

  /** Moves the caller's read mark up to `seq`. */
  async markRead(chatId: string, seq: number): Promise<void> {
    await this.request("POST", `${chatPath(chatId)}/read`, { seq });
  }

  /** Adds the caller's reaction (one emoji) to a message; doing it twice changes nothing. */
  async react(chatId: string, messageId: string, emoji: string): Promise<void> {
    await this.request("PUT", reactionPath(chatId, messageId, emoji));
  }

  /** Takes the caller's reaction back; also fine when there was none. */
  async unreact(chatId: string, messageId: string, emoji: string): Promise<void> {
    await this.request("DELETE", reactionPath(chatId, messageId, emoji));
  }

  /** Blocks a user: no direct chat, typing or presence between the two; their group messages are marked. */
  async block(userId: string): Promise<void> {
    await this.request("PUT", blockPath(userId));
  }

  async unblock(userId: string): Promise<void> {
    await this.request("DELETE", blockPath(userId));
  }

  /** The users the caller blocks, newest block first. */
  async blocks(): Promise<PublicProfile[]> {
    return (await this.request<{ users: PublicProfile[] }>("GET", "/users/me/blocks")).users;
  }

  /**
   * Mutes a chat for the caller until a time in the future, or always (`null`). The chat still
   * counts unread messages; its ChatView says `muted` and `mutedUntil`.
   */
  async mute(chatId: string, until: Date | string | null): Promise<void> {
    const at = until instanceof Date ? until.toISOString() : until;
    await this.request("PUT", `${chatPath(chatId)}/mute`, { until: at });
  }

  async unmute(chatId: string): Promise<void> {
    await this.request("DELETE", `${chatPath(chatId)}/mute`);
  }

  /** Pins a message (any member of a direct chat, only the owner of a group). */
  async pin(chatId: string, messageId: string): Promise<void> {
    await this.request("PUT", pinPath(chatId, messageId));
  }

  async unpin(chatId: string, messageId: string): Promise<void> {
    await this.request("DELETE", pinPath(chatId, messageId));
  }

  /** The chat's pinned messages, newest pin first. */
  async pins(chatId: string): Promise<PinView[]> {
    return (await this.request<{ pins: PinView[] }>("GET", `${chatPath(chatId)}/pins`)).pins;
  }

  private setTokens(pair: TokenPair): void {
    this.tokens = { ...pair, expiresAt: Date.now() + pair.expiresIn * 1000 };
  }

  /** Refreshes the token pair when the access token is close to expiry. */
  async refreshIfDue(): Promise<void> {
    const t = this.tokens;
    if (!t || t.expiresAt - Date.now() > t.expiresIn * 1000 * REFRESH_AT) return;
    this.refreshing ??= this.refresh()
      .then(() => undefined)
      .finally(() => {
        this.refreshing = undefined;
      });
    await this.refreshing;
  }
}

function chatPath(chatId: string): string {
  return `/chats/${encodeURIComponent(chatId)}`;
}

function messagePath(chatId: string, messageId: string): string {
  return `${chatPath(chatId)}/messages/${encodeURIComponent(messageId)}`;
}

/** The emoji goes in the path, so it is URL-encoded (an emoji is several UTF-8 bytes, some with U+FE0F). */
function reactionPath(chatId: string, messageId: string, emoji: string): string {
  return `${messagePath(chatId, messageId)}/reactions/${encodeURIComponent(emoji)}`;
}

function pinPath(chatId: string, messageId: string): string {
  return `${chatPath(chatId)}/pins/${encodeURIComponent(messageId)}`;
}

function blockPath(userId: string): string {
  return `/users/me/blocks/${encodeURIComponent(userId)}`;
}

/** An idempotent call may be resent after any network failure; another only when it never reached a server. */
function retryableFailure(idempotent: boolean, err: unknown): boolean {
  if (idempotent) return true;
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === "ECONNREFUSED";
}

function retryAfterMs(headers: Headers): number {
  const seconds = Number(headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

/** An upload's answer: the stored file, or ApiError with the server's code. */
function uploadAnswer(status: number, contentType: string | null, text: string): UploadView {
  let parsed: unknown = text;
  if (text && contentType?.includes("json")) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // Left as text: the status still says what happened.
    }
  }
  if (status >= 400 || status < 200) throw new ApiError(status, parsed);
  return parsed as UploadView;
}

/**
 * The bytes of `source` as a stream that reads one chunk only when its reader (fetch) asks for
 * one (no read-ahead), counting what was handed out.
 */
export function countingStream(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>,
  onProgress: (loaded: number) => void,
): ReadableStream<Uint8Array> {
  let loaded = 0;
  const encoder = new TextEncoder();
  let next: () => Promise<IteratorResult<Uint8Array | string>>;
  let cancel: (reason: unknown) => Promise<unknown>;
  if (typeof (source as ReadableStream).getReader === "function") {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    next = () => reader.read() as Promise<IteratorResult<Uint8Array>>;
    cancel = (reason) => reader.cancel(reason);
  } else {
    const iterator = (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
    next = () => iterator.next();
    cancel = async () => iterator.return?.();
  }
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const { done, value } = await next();
          if (done) {
            controller.close();
            return;
          }
          const chunk = typeof value === "string" ? encoder.encode(value) : value;
          if (chunk.byteLength === 0) continue;
          controller.enqueue(chunk);
          loaded += chunk.byteLength;
          onProgress(loaded);
          return;
        }
      },
      cancel: (reason) => cancel(reason).then(() => undefined),
    },
    { highWaterMark: 0 },
  );
}

/** What xhrUpload uses of a browser's XMLHttpRequest (the package builds without the DOM types). */
interface Xhr {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  getResponseHeader(name: string): string | null;
  send(body: Blob): void;
  abort(): void;
  readonly status: number;
  readonly responseText: string;
  readonly upload: { onprogress: ((event: { loaded: number }) => void) | null; onload: (() => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}

/** A Blob upload in a browser: the browser streams the file, `upload.onprogress` says how far. */
function xhrUpload(
  xhr: Xhr,
  url: string,
  headers: Record<string, string>,
  body: Blob,
  options: UploadOptions,
): Promise<UploadView> {
  return new Promise((resolve, reject) => {
    xhr.open("POST", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    let last = -1;
    const progress = (loaded: number) => {
      if (loaded <= last) return;
      last = loaded;
      options.onProgress?.(loaded, body.size);
    };
    xhr.upload.onprogress = (event) => progress(Math.min(event.loaded, body.size));
    xhr.upload.onload = () => progress(body.size);
    const onAbort = () => xhr.abort();
    const done = () => options.signal?.removeEventListener("abort", onAbort);
    xhr.onload = () => {
      done();
      try {
        const answer = uploadAnswer(xhr.status, xhr.getResponseHeader("content-type"), xhr.responseText);
        progress(body.size);
        resolve(answer);
      } catch (err) {
        reject(err);
      }
    };
    xhr.onerror = () => {
      done();
      // As fetch does on a network failure.
      reject(new TypeError("The upload failed: the server could not be reached"));
    };
    xhr.onabort = () => {
      done();
      reject(options.signal?.reason ?? new DOMException("The upload was aborted", "AbortError"));
    };
    if (options.signal?.aborted) {
      reject(options.signal.reason ?? new DOMException("The upload was aborted", "AbortError"));
      return;
    }
    options.signal?.addEventListener("abort", onAbort);
    xhr.send(body);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
