/**
 * Sends Web Push messages (RFC 8030), each encrypted for its subscription (aes128gcm, RFC 8291)
 * and signed with the platform's VAPID key (RFC 8292). One signed header per push service origin
 * is reused for about 12 hours instead of signing a JWT per push; connections are kept alive; at
 * most `concurrency` pushes are in flight, the rest wait in order. A 404 or 410 means the
 * subscription is gone (`onGone`); a 429 or 5xx, or a failed connection, is tried again after a
 * backoff (the push service's Retry-After when it sends one, capped) up to `maxAttempts` times.
 */

import { createHash } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import http from "node:http";
import https from "node:https";
import webPush from "web-push";
import type { PushResult } from "../metrics.ts";
import { isInternalHost } from "./endpoint-rules.ts";
import type { VapidKeys } from "./vapid-keys.ts";

export interface PushTarget {
  endpoint: string;
  p256dh: string;
  auth: string;
}

export interface PushSenderOptions<T extends PushTarget> {
  keys: VapidKeys;
  /** The VAPID `sub` claim: a mailto: or https: URL. */
  subject: string;
  /** The push service said the subscription no longer exists (404/410). */
  onGone(target: T): void;
  logger: { warn(...args: unknown[]): void };
  /** Counts each outcome (lib/metrics.ts `social_push_sent_total`). */
  counted?(result: PushResult): void;
  concurrency?: number;
  maxAttempts?: number;
  /** The first retry's delay without Retry-After; it doubles with each attempt. */
  backoffMs?: number;
  /** The longest wait before a retry, Retry-After included. */
  maxBackoffMs?: number;
  timeoutMs?: number;
  /**
   * Connect to internal addresses (tests). Off, an endpoint whose name resolves to a loopback,
   * private, link-local or unspecified address is refused when connecting, so a subscription
   * cannot aim the chat nodes at internal services through DNS.
   */
  allowInternal?: boolean;
}

/** The push service keeps a push this long for a device that is offline. */
export const PUSH_TTL_S = 86_400;
const CONCURRENCY = 64;
const MAX_ATTEMPTS = 5;
const BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;
const TIMEOUT_MS = 10_000;
/** How long one signed VAPID header serves its origin; the JWT itself is valid a while longer. */
const VAPID_REUSE_MS = 12 * 3_600_000;
const VAPID_LIFETIME_S = 23 * 3_600;

const PREPARING = "EPUSHPREPARE";
/**
 * Failures another attempt cannot mend: the push could not be encrypted or signed (keys, subject),
 * or the endpoint's name resolves to an internal address.
 */
const NOT_RETRIED = new Set([PREPARING, "EPUSHINTERNAL"]);

interface Job<T> {
  target: T;
  payload: Buffer;
  topic: string;
  attempt: number;
}

/** dns.lookup, refusing names that resolve to an internal address (endpoint-rules.ts isInternalHost). */
export function publicOnlyLookup(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 0);
    const list = addresses as LookupAddress[];
    const internal = list.find((a) => isInternalHost(a.address));
    if (internal || list.length === 0) {
      const refused = new Error(
        `${hostname} resolves to an internal address; no push is sent there`,
      ) as NodeJS.ErrnoException;
      refused.code = "EPUSHINTERNAL";
      return callback(refused, "", 0);
    }
    if (options.all) return callback(null, list);
    const first = list[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
}

/** A 32-character base64url `Topic` for the user's pushes of one chat: a burst collapses to one. */
export function pushTopic(userId: string, chatId: string): string {
  return createHash("sha256").update(`${userId}\n${chatId}`).digest("base64url").slice(0, 32);
}

export class PushSender<T extends PushTarget> {
  private readonly o: PushSenderOptions<T>;
  private readonly queue: Job<T>[] = [];
  private readonly vapid = new Map<string, { header: string; renewAt: number }>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private readonly agents: { https: https.Agent; http: http.Agent };
  private running = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: PushSenderOptions<T>) {
    this.o = options;
    const lookup = options.allowInternal ? undefined : publicOnlyLookup;
    this.agents = {
      https: new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ...(lookup ? { lookup } : {}) }),
      http: new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ...(lookup ? { lookup } : {}) }),
    };
  }

  /** Queues one push; never throws (a failure is counted and logged). */
  send(target: T, payload: string, topic: string): void {
    if (this.closed) return;
    this.queue.push({ target, payload: Buffer.from(payload), topic, attempt: 1 });
    this.pump();
  }

  /** Resolves once nothing is queued, in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what waits, and the kept connections; pushes in flight end as they will. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    this.agents.https.destroy();
    this.agents.http.destroy();
    this.settle();
  }

  private pump(): void {
    const limit = this.o.concurrency ?? CONCURRENCY;
    while (this.running < limit && this.queue.length > 0) {
      const job = this.queue.shift() as Job<T>;
      this.running += 1;
      void this.attempt(job).finally(() => {
        this.running -= 1;
        this.pump();
        this.settle();
      });
    }
  }

  private async attempt(job: Job<T>): Promise<void> {
    let outcome: { status: number; retryAfter: string | undefined } | Error;
    try {
      outcome = await this.post(job);
    } catch (err) {
      outcome = err as Error;
    }
    if (!(outcome instanceof Error) && outcome.status >= 200 && outcome.status < 300) {
      this.o.counted?.("sent");
      return;
    }
    if (!(outcome instanceof Error) && (outcome.status === 404 || outcome.status === 410)) {
      this.o.counted?.("gone");
      this.o.onGone(job.target);
      return;
    }
    const retryable =
      outcome instanceof Error
        ? !NOT_RETRIED.has((outcome as NodeJS.ErrnoException).code ?? "")
        : outcome.status === 429 || outcome.status >= 500;
    const what = outcome instanceof Error ? outcome.message : `status ${outcome.status}`;
    const origin = originOf(job.target.endpoint);
    if (retryable && job.attempt < (this.o.maxAttempts ?? MAX_ATTEMPTS) && !this.closed) {
      this.o.counted?.("retried");
      const delay = this.backoff(job.attempt, outcome instanceof Error ? undefined : outcome.retryAfter);
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        this.queue.push({ ...job, attempt: job.attempt + 1 });
        this.pump();
      }, delay);
      timer.unref();
      this.retries.add(timer);
      return;
    }
    this.o.counted?.("failed");
    this.o.logger.warn(`A push to ${origin} failed after ${job.attempt} attempts (${what})`);
  }

  /** Encrypts and posts one push; resolves the push service's status. */
  private post(job: Job<T>): Promise<{ status: number; retryAfter: string | undefined }> {
    const url = new URL(job.target.endpoint);
    let cipherText: Buffer;
    let authorization: string;
    try {
      ({ cipherText } = webPush.encrypt(job.target.p256dh, job.target.auth, job.payload, "aes128gcm"));
      authorization = this.vapidHeader(url.origin);
    } catch (err) {
      return Promise.reject(
        Object.assign(new Error(`preparing: ${(err as Error).message}`), { code: PREPARING }),
      );
    }
    const headers = {
      Authorization: authorization,
      "Content-Encoding": "aes128gcm",
      "Content-Type": "application/octet-stream",
      "Content-Length": String(cipherText.length),
      TTL: String(PUSH_TTL_S),
      Urgency: "normal",
      Topic: job.topic,
    };
    const secure = url.protocol === "https:";
    const request = secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          headers,
          agent: secure ? this.agents.https : this.agents.http,
          timeout: this.o.timeoutMs ?? TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            const retryAfter = res.headers["retry-after"];
            resolve({ status: res.statusCode ?? 0, retryAfter });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("The push service did not answer in time")));
      req.on("error", reject);
      req.end(cipherText);
    });
  }

  /** The `Authorization: vapid t=…, k=…` header for a push service origin, signed anew every 12 h. */
  private vapidHeader(audience: string): string {
    const now = Date.now();
    const cached = this.vapid.get(audience);
    if (cached && cached.renewAt > now) return cached.header;
    const expiration = Math.floor(now / 1000) + VAPID_LIFETIME_S;
    const { Authorization } = webPush.getVapidHeaders(
      audience,
      this.o.subject,
      this.o.keys.publicKey,
      this.o.keys.privateKey,
      "aes128gcm",
      expiration,
    );
    this.vapid.set(audience, { header: Authorization, renewAt: now + VAPID_REUSE_MS });
    return Authorization;
  }

  private backoff(attempt: number, retryAfter: string | undefined): number {
    const max = this.o.maxBackoffMs ?? MAX_BACKOFF_MS;
    const asked = retryAfterMs(retryAfter);
    if (asked !== undefined) return Math.min(asked, max);
    const base = (this.o.backoffMs ?? BACKOFF_MS) * 2 ** (attempt - 1);
    return Math.min(base / 2 + Math.random() * (base / 2), max);
  }

  private isIdle(): boolean {
    return this.running === 0 && this.queue.length === 0 && this.retries.size === 0;
  }

  private settle(): void {
    if (!this.isIdle() && !this.closed) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Retry-After as delay-seconds or an HTTP date, in ms from now; undefined when absent or bad. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return "an invalid endpoint";
  }
}
