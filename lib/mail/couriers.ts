/**
 * The two ways a mail leaves the node: over SMTP (nodemailer's pooled transport, a few connections
 * kept open), or, without SMTP_URL, as an RFC 5322 `.eml` file in the outbox folder, built by
 * nodemailer's stream transport exactly as it would go over the wire. A courier tries one mail once;
 * the mailer (mailer.ts) queues and retries.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "moleculer";
import nodemailer from "nodemailer";
import type { MailKind } from "./templates.ts";

/** A mail ready to go: the rendered parts and who it is for. */
export interface OutgoingMail {
  kind: MailKind;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The link the mail carries: logged in outbox mode only, never in a failure. */
  link?: string;
}

export interface Courier {
  /** Hands one mail over; rejects when it did not go (the mailer decides whether to try again). */
  deliver(mail: OutgoingMail): Promise<void>;
  /** Closes idle connections; with `force` also the ones in the middle of a mail. */
  close(force?: boolean): void;
}

/** SMTP connections open at once, so a few mails go out in parallel. */
export const SMTP_CONNECTIONS = 4;
/** A server that does not answer is a failed try, not a mail stuck for minutes (nodemailer: 2 min). */
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 60_000;

export function smtpCourier(smtpUrl: string, from: string): Courier {
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    pool: true,
    maxConnections: SMTP_CONNECTIONS,
    // The mailer retries with its own backoff, counted in its metrics; the pool must not also
    // resend a mail on its own when a connection drops.
    maxRequeues: 0,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  });
  return {
    async deliver(mail) {
      await transport.sendMail(message(mail, from));
    },
    close(force = false) {
      transport.close({ force });
    },
  };
}

/** `20261207T065007.123Z-verify-email-3f9a0c12d4e5.eml` (ISO 8601 basic format: no colons). */
export function outboxFileName(kind: MailKind, at = new Date()): string {
  return `${at.toISOString().replace(/[-:]/g, "")}-${kind}-${randomBytes(6).toString("hex")}.eml`;
}

export function outboxCourier(outboxDir: string, from: string, logger: Logger): Courier {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  return {
    async deliver(mail) {
      const { message: eml } = await transport.sendMail(message(mail, from));
      // The links in these files are secrets: the folder and the files are the node user's alone,
      // whatever the umask or the folder's mode before.
      await mkdir(outboxDir, { recursive: true, mode: 0o700 });
      await chmod(outboxDir, 0o700);
      const file = path.join(outboxDir, outboxFileName(mail.kind));
      await writeFile(file, eml as Buffer, { mode: 0o600, flag: "wx" });
      logger.info(
        `Mail (${mail.kind}) to ${mail.to} written to ${file}${mail.link ? `; its link: ${mail.link}` : ""} (set SMTP_URL to send mails)`,
      );
    },
    close() {
      transport.close();
    },
  };
}

function message(mail: OutgoingMail, from: string) {
  return { from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html };
}
