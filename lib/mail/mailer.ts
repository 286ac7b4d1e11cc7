/**
 * Mail out of the request path. `send()` queues and returns at once; a few mails are handed over
 * at a time: to the SMTP server (SMTP_URL, a pool of connections), or, without one, written as
 * `.eml` files under DATA_DIR/outbox with their links logged, so the embedded default works with
 * no mail server (couriers.ts).
 *
 * A failed try is repeated with exponential backoff (1 s, doubling, at most 5 min apart, 8 tries in
 * all by default); an SMTP answer of 5xx is final at once. A mail given up, refused because the
 * queue is full or the mailer closed, or addressed to something that is no address is logged at
 * error level (its kind and recipient, never its link) and counted in social_mail_failed_total:
 * a mail is never dropped silently. The queue lives in the node's memory: a node that dies takes
 * its unsent mails with it, which the user meets as a link that never came and asks for again.
 */
import type { Logger } from "moleculer";
import addressparser from "nodemailer/lib/addressparser";
import type { PlatformMetrics } from "../metrics.ts";
import { type Courier, type OutgoingMail, outboxCourier, SMTP_CONNECTIONS, smtpCourier } from "./couriers.ts";

export type { OutgoingMail } from "./couriers.ts";

export interface Mailer {
  /** Queues the mail and returns at once; never throws, never blocks the request. */
  send(mail: OutgoingMail): void;
  /** Resolves when every queued mail was sent or given up, or when the time (30 s) is up. */
  drain(timeoutMs?: number): Promise<void>;
  /** Gives up the mails still waiting (logged, counted), lets the ones on the wire finish. */
  close(): Promise<void>;
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** The wait before the second try; each later wait doubles it. */
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, firstDelayMs: 1_000, maxDelayMs: 300_000 };
/** Mails held at most (waiting, waiting for a retry, on the wire); beyond it a mail is refused. */
export const MAX_QUEUE = 10_000;
/** How long close() lets mails on the wire finish before it cuts their connections. */
const CLOSE_GRACE_MS = 5_000;

/** The part of the platform metrics the mailer records. */
export type MailMetrics = Pick<
  PlatformMetrics,
  "mailSentOne" | "mailFailedOne" | "mailRetried" | "mailQueued"
>;

export interface MailerOptions {
  /** smtp:// or smtps://; without it, mails go to `outboxDir`. */
  smtpUrl?: string | undefined;
  /** The From: of every mail, `Name <address>` or an address. */
  from: string;
  outboxDir: string;
  logger: Logger;
  metrics?: MailMetrics | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  maxQueue?: number | undefined;
}

/** The wait before try number `attempt` (2, 3, ...) of a mail. */
export function backoffMs(attempt: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  return Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.max(0, attempt - 2));
}

/** One mailbox, `a@b` or `Name <a@b>`: what a mail can be sent to. */
export function isMailAddress(to: unknown): to is string {
  if (typeof to !== "string" || to.length > 998 || /[\r\n]/.test(to)) return false;
  const parsed = addressparser(to, { flatten: true });
  return parsed.length === 1 && /^[^\s@]+@[^\s@]+$/.test(parsed[0]?.address ?? "");
}

export function createMailer(options: MailerOptions): Mailer {
  return new QueuedMailer(options);
}

interface Queued {
  mail: OutgoingMail;
  /** The number of the next try, 1 for a new mail. */
  attempt: number;
}

class QueuedMailer implements Mailer {
  private readonly logger: Logger;
  private readonly metrics: MailMetrics | undefined;
  private readonly retry: RetryPolicy;
  private readonly maxQueue: number;
  private readonly courier: Courier;
  private readonly ready: Queued[] = [];
  /** Mails waiting for their next try, with the timer that puts them back in `ready`. */
  private readonly waiting = new Map<Queued, NodeJS.Timeout>();
  private active = 0;
  private pumpScheduled: NodeJS.Immediate | undefined;
  private readonly idleWaiters = new Set<() => void>();
  private closed = false;

  constructor(options: MailerOptions) {
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.maxQueue = options.maxQueue ?? MAX_QUEUE;
    this.courier = options.smtpUrl
      ? smtpCourier(options.smtpUrl, options.from)
      : outboxCourier(options.outboxDir, options.from, options.logger);
  }

  send(mail: OutgoingMail): void {
    try {
      const refusal = this.refusal(mail);
      if (refusal) {
        this.giveUp(mail, refusal);
        return;
      }
      this.ready.push({ mail, attempt: 1 });
      this.gauge();
      this.schedulePump();
    } catch (err) {
      // Not even a mail object (a bug of the caller): logged, and still never thrown at the caller.
      this.safeLog(`A mail could not be queued: ${describe(err)}`);
    }
  }

  async drain(timeoutMs = 30_000): Promise<void> {
    await this.idle(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return this.idle(CLOSE_GRACE_MS);
    this.closed = true;
    clearImmediate(this.pumpScheduled);
    for (const timer of this.waiting.values()) clearTimeout(timer);
    const left = [...this.ready.splice(0), ...this.waiting.keys()];
    this.waiting.clear();
    for (const item of left) this.giveUp(item.mail, "the node stopped before it was sent", item.attempt - 1);
    this.gauge();
    this.courier.close();
    await this.idle(CLOSE_GRACE_MS);
    if (this.active > 0) {
      this.courier.close(true);
      await this.idle(CLOSE_GRACE_MS);
    }
    this.settle();
  }

  /** Why a mail cannot be queued, if it cannot. */
  private refusal(mail: OutgoingMail): string | undefined {
    if (this.closed) return "the mailer is closed";
    if (!isMailAddress(mail.to)) return "the recipient is not a mail address";
    if (this.size() >= this.maxQueue) return "the mail queue is full";
    return undefined;
  }

  private size(): number {
    return this.ready.length + this.waiting.size + this.active;
  }

  /** Deliveries start on the next turn of the event loop, never inside the caller's send(). */
  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = setImmediate(() => {
      this.pumpScheduled = undefined;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.active < SMTP_CONNECTIONS) {
      const item = this.ready.shift();
      if (!item) break;
      this.active += 1;
      void this.deliver(item).finally(() => {
        this.active -= 1;
        this.gauge();
        this.pump();
        this.settle();
      });
    }
  }

  private async deliver(item: Queued): Promise<void> {
    const { mail } = item;
    try {
      await this.courier.deliver(mail);
      this.metrics?.mailSentOne(mail.kind);
    } catch (err) {
      const why = describe(err, mail.link);
      if (item.attempt >= this.retry.attempts || this.closed || isPermanent(err)) {
        this.giveUp(mail, why, item.attempt);
        return;
      }
      const next = { mail, attempt: item.attempt + 1 };
      const delay = backoffMs(next.attempt, this.retry);
      this.metrics?.mailRetried();
      this.logger.warn(
        `Mail (${mail.kind}) to ${mail.to} failed (${why}); try ${next.attempt} of ${this.retry.attempts} in ${delay} ms`,
      );
      const timer = setTimeout(() => {
        this.waiting.delete(next);
        this.ready.push(next);
        this.pump();
      }, delay);
      // A retry alone does not keep the process alive; close() gives such mails up on shutdown.
      timer.unref();
      this.waiting.set(next, timer);
    }
  }

  private giveUp(mail: OutgoingMail, why: string, tries = 0): void {
    this.metrics?.mailFailedOne(mail.kind);
    this.safeLog(
      `Mail (${mail.kind}) to ${mail.to} was given up${tries ? ` after ${tries} ${tries === 1 ? "try" : "tries"}` : ""}: ${why}`,
    );
  }

  private safeLog(message: string): void {
    try {
      this.logger.error(message);
    } catch {
      // The logger itself failed; there is nowhere left to report to.
    }
  }

  private gauge(): void {
    this.metrics?.mailQueued(this.size());
  }

  /** Resolves when nothing is queued or on the wire, or after `timeoutMs`. */
  private idle(timeoutMs: number): Promise<void> {
    if (this.size() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  private settle(): void {
    if (this.size() > 0) return;
    for (const waiter of [...this.idleWaiters]) waiter();
  }
}

/**
 * Trying again changes nothing: an SMTP answer of 5xx (recipient or message refused), or an envelope
 * nodemailer refuses before asking the server. A 4xx (even on a recipient) is worth another try.
 */
function isPermanent(err: unknown): boolean {
  const { responseCode, code } = (err ?? {}) as { responseCode?: unknown; code?: unknown };
  if (typeof responseCode === "number") return responseCode >= 500 && responseCode < 600;
  return code === "EENVELOPE";
}

/** The error's message, with the mail's link cut out should a server have echoed it back. */
function describe(err: unknown, link?: string): string {
  const message = err instanceof Error ? err.message : String(err);
  return link ? message.replaceAll(link, "[link]") : message;
}
