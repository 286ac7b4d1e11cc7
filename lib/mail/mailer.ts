/**
 * Mail out of the request path. `send()` queues and returns at once; a small pool of workers hands
 * each mail to the SMTP server (nodemailer's pooled SMTP transport, SMTP_URL), or, without one,
 * writes it as an `.eml` file under DATA_DIR/outbox (0600, in a 0700 folder: the links in it are
 * secrets) and logs its link, so the embedded default works with no mail server.
 *
 * A failed send is tried again with exponential backoff (1 s, doubling, at most 5 min apart, 8
 * tries by default). A mail given up, or refused because the queue is full, is logged at error
 * level (its kind and recipient, never its link) and counted in social_mail_failed_total: mail is
 * never dropped silently. The queue lives in the node's memory: a node that dies takes its unsent
 * mails with it, which the user meets as a link that never came and asks for again (resend, reset).
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import nodemailer, { type Transporter } from "nodemailer";
import type { PlatformMetrics } from "../metrics.ts";
import type { MailKind } from "./templates.ts";

export interface OutgoingMail {
  kind: MailKind;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The link the mail carries, logged in outbox mode only. */
  link?: string;
}

export interface Mailer {
  /** Queues the mail and returns at once; never throws, never blocks the request. */
  send(mail: OutgoingMail): void;
  /** Resolves when every queued mail was sent or given up, or the time is up. */
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, firstDelayMs: 1_000, maxDelayMs: 300_000 };
/** Mails waiting at most; beyond it a mail is refused (logged and counted). */
export const MAX_QUEUE = 10_000;
/** Mails being handed over at once (the SMTP pool's connections). */
const WORKERS = 4;

export interface MailerOptions {
  smtpUrl?: string | undefined;
  from: string;
  outboxDir: string;
  logger: { info(message: string): void; warn(message: string): void; error(message: string): void };
  metrics?: PlatformMetrics | undefined;
  retry?: Partial<RetryPolicy>;
  maxQueue?: number;
}

/** The wait before try number `attempt` (2, 3, ...) of a mail. */
export function backoffMs(attempt: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.max(0, attempt - 2));
}

/** `2026-12-07T06-50-07.123Z-verify-email-3f9a….eml`: sorts by time, and no two are the same. */
export function outboxFileName(kind: MailKind, at = new Date()): string {
  return `${at.toISOString().replace(/:/g, "-")}-${kind}-${randomBytes(6).toString("hex")}.eml`;
}

interface Queued {
  mail: OutgoingMail;
  attempt: number;
  notBefore: number;
}

export function createMailer(options: MailerOptions): Mailer {
  return new QueuedMailer(options);
}

class QueuedMailer implements Mailer {
  private readonly o: MailerOptions;
  private readonly retry: RetryPolicy;
  private readonly transport: Transporter;
  private readonly outbox: boolean;
  private readonly queue: Queued[] = [];
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(options: MailerOptions) {
    this.o = options;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.outbox = !options.smtpUrl;
    this.transport = options.smtpUrl
      ? nodemailer.createTransport(options.smtpUrl, { pool: true, maxConnections: WORKERS } as object)
      : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  }

  send(mail: OutgoingMail): void {
    if (this.closed || this.queue.length >= (this.o.maxQueue ?? MAX_QUEUE)) {
      this.giveUp(mail, this.closed ? "the mailer is closed" : "the mail queue is full");
      return;
    }
    this.queue.push({ mail, attempt: 1, notBefore: 0 });
    this.gauge();
    this.pump();
  }

  async drain(timeoutMs = 30_000): Promise<void> {
    if (this.queue.length === 0 && this.active === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const left of this.queue.splice(0)) this.giveUp(left.mail, "the node stopped before it was sent");
    this.gauge();
    this.transport.close();
    this.settle();
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    while (this.active < WORKERS) {
      const at = this.queue.findIndex((q) => q.notBefore <= now);
      if (at === -1) break;
      const [item] = this.queue.splice(at, 1);
      if (!item) break;
      this.active += 1;
      void this.deliver(item).finally(() => {
        this.active -= 1;
        this.gauge();
        this.pump();
        this.settle();
      });
    }
    this.schedule();
  }

  /** Wakes the pump when the next waiting retry is due. */
  private schedule(): void {
    clearTimeout(this.timer);
    if (this.queue.length === 0 || this.closed) return;
    const next = Math.min(...this.queue.map((q) => q.notBefore));
    this.timer = setTimeout(() => this.pump(), Math.max(0, next - Date.now()));
    this.timer.unref();
  }

  private async deliver(item: Queued): Promise<void> {
    const { mail } = item;
    try {
      const info = await this.transport.sendMail({
        from: this.o.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
      });
      if (this.outbox) await this.writeOutbox(mail, (info as { message: Buffer }).message);
      this.o.metrics?.mailSentOne(mail.kind);
    } catch (err) {
      if (item.attempt >= this.retry.attempts || this.closed || isPermanent(err)) {
        this.giveUp(mail, describe(err), item.attempt);
        return;
      }
      const attempt = item.attempt + 1;
      this.o.metrics?.mailRetried();
      this.o.logger.warn(
        `Mail (${mail.kind}) to ${mail.to} failed (${describe(err)}); try ${attempt} of ${this.retry.attempts} in ${backoffMs(attempt, this.retry)} ms`,
      );
      this.queue.push({ mail, attempt, notBefore: Date.now() + backoffMs(attempt, this.retry) });
    }
  }

  private async writeOutbox(mail: OutgoingMail, message: Buffer): Promise<void> {
    await mkdir(this.o.outboxDir, { recursive: true, mode: 0o700 });
    await chmod(this.o.outboxDir, 0o700);
    const file = path.join(this.o.outboxDir, outboxFileName(mail.kind));
    await writeFile(file, message, { mode: 0o600, flag: "wx" });
    this.o.logger.info(
      `Mail (${mail.kind}) to ${mail.to} written to ${file}${mail.link ? `; its link: ${mail.link}` : ""} (set SMTP_URL to send mail)`,
    );
  }

  private giveUp(mail: OutgoingMail, why: string, attempts = 0): void {
    this.o.metrics?.mailFailedOne(mail.kind);
    this.o.logger.error(
      `Mail (${mail.kind}) to ${mail.to} was given up${attempts ? ` after ${attempts} tries` : ""}: ${why}`,
    );
  }

  private gauge(): void {
    this.o.metrics?.mailQueued(this.queue.length + this.active);
  }

  private settle(): void {
    if (this.queue.length > 0 || this.active > 0) return;
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }
}

/** An SMTP answer of 5xx about the recipient or the message: trying again changes nothing. */
function isPermanent(err: unknown): boolean {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code === "number" && code >= 500 && code < 600;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
