/**
 * The platform's REST client: the one way the project's own tools (tests, load tools, the web
 * page) talk to the API. It keeps the token pair of a signed-in user and refreshes the access
 * token shortly before it expires.
 */
import type { OwnProfile, PublicProfile, SessionView, TokenPair, UserView } from "../lib/contracts.ts";

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

/** Refresh when less than this share of the access token's life is left. */
const REFRESH_AT = 0.2;

/**
 * How request() retries: reads (GET, HEAD, OPTIONS) after a network error or a 502, 503 or 504;
 * writes only when the connection was refused, so the server never saw them. Backoff doubles from minDelayMs with jitter, up to maxDelayMs, and
 * follows Retry-After within that cap. `attempts` counts the first try.
 */
export interface RetryOptions {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 4, minDelayMs: 100, maxDelayMs: 2_000 };
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const RETRYABLE_READ_STATUS = new Set([502, 503, 504]);

export class ApiClient {
  readonly baseUrl: string;
  private tokens: (TokenPair & { expiresAt: number }) | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly headers: Record<string, string>;
  private readonly retry: RetryOptions;

  constructor(
    baseUrl: string,
    options: { headers?: Record<string, string>; retry?: Partial<RetryOptions> | false } = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.headers = options.headers ?? {};
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
    const res = await fetch(this.baseUrl + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if (text && res.headers.get("content-type")?.includes("json")) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  /**
   * Sends a request with the current (refreshed if due) token, retrying what is safe to retry
   * (see RetryOptions); throws ApiError on 4xx/5xx.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.refreshIfDue();
      let res: ApiResponse<T>;
      try {
        res = await this.raw<T>(method, path, { body });
      } catch (err) {
        if (attempt >= this.retry.attempts || !retryableFailure(method, err)) throw err;
        await sleep(this.backoff(attempt));
        continue;
      }
      if (res.status < 400) return res.body;
      if (attempt >= this.retry.attempts || !retryableStatus(method, res)) {
        throw new ApiError(res.status, res.body);
      }
      await sleep(this.backoff(attempt, retryAfterMs(res.headers)));
    }
  }

  private backoff(attempt: number, atLeastMs = 0): number {
    const exp = Math.min(this.retry.maxDelayMs, this.retry.minDelayMs * 2 ** (attempt - 1));
    return Math.min(this.retry.maxDelayMs, Math.max(atLeastMs, exp * (0.5 + Math.random() / 2)));
  }

  async register(input: { email: string; username: string; password: string; displayName?: string }) {
    const res = await this.request<{ user: UserView } & TokenPair>("POST", "/auth/register", input);
    this.setTokens(res);
    return res;
  }

  async login(input: { email?: string; username?: string; password: string }) {
    const res = await this.request<{ user: UserView } & TokenPair>("POST", "/auth/login", input);
    this.setTokens(res);
    return res;
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
    return this.request("DELETE", `/auth/sessions/${encodeURIComponent(id)}`);
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

/** A read may be resent after any network failure; a write only when it never reached a server. */
function retryableFailure(method: string, err: unknown): boolean {
  if (SAFE_METHODS.has(method.toUpperCase())) return true;
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === "ECONNREFUSED";
}

/** A write that got 503 may have been done (a timeout after the store wrote), so only reads. */
function retryableStatus(method: string, res: ApiResponse<unknown>): boolean {
  return SAFE_METHODS.has(method.toUpperCase()) && RETRYABLE_READ_STATUS.has(res.status);
}

function retryAfterMs(headers: Headers): number {
  const seconds = Number(headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
