/**
 * The mailer against a real SMTP server (Mailpit): mails arrive whole, a server that is down is
 * retried until it is back, one gone for good ends in a logged, counted failure; and without
 * SMTP_URL, mails are .eml files readable only by the node's user.
 */
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createMailer, renderMail } from "../../lib/mail/index.ts";
import type { PlatformMetrics } from "../../lib/metrics.ts";
import { type MailpitHandle, startMailpit } from "../harness/mailpit.ts";
import { decodeQuotedPrintable } from "../support/outbox.ts";
import { tempDir } from "../support/platform.ts";

let mailpit: MailpitHandle;
before(async () => {
  mailpit = await startMailpit();
});
after(() => mailpit?.stop());

function recorder() {
  const logs: { level: string; message: string }[] = [];
  const counts = { sent: 0, failed: 0, retried: 0, queue: [] as number[] };
  const logger = {
    info: (message: string) => logs.push({ level: "info", message }),
    warn: (message: string) => logs.push({ level: "warn", message }),
    error: (message: string) => logs.push({ level: "error", message }),
  };
  const metrics = {
    mailSentOne: () => counts.sent++,
    mailFailedOne: () => counts.failed++,
    mailRetried: () => counts.retried++,
    mailQueued: (n: number) => counts.queue.push(n),
  } as unknown as PlatformMetrics;
  return { logs, counts, logger, metrics };
}

function mailTo(to: string, link = "http://localhost:3000/#reset-password=abc") {
  return {
    kind: "password-reset" as const,
    to,
    link,
    ...renderMail("password-reset", { displayName: "Ann <b>", link }),
  };
}

describe("over SMTP", () => {
  test("a mail arrives with its From, subject, text and HTML; the display name is escaped in the HTML", async () => {
    const r = recorder();
    const mailer = createMailer({
      smtpUrl: mailpit.smtpUrl,
      from: "Social <no-reply@social.test>",
      outboxDir: "/nonexistent",
      ...r,
    });
    mailer.send(mailTo("ann@example.test"));
    await mailer.drain(10_000);
    const mail = await mailpit.waitForMail("ann@example.test");
    assert.equal(mail.subject, "Reset your password");
    assert.equal(mail.from, "Social <no-reply@social.test>");
    assert.match(mail.text, /Hello Ann <b>,/);
    assert.match(mail.text, /#reset-password=abc/);
    assert.match(mail.html, /Hello Ann &#60;b&#62;,/);
    assert.ok(!mail.html.includes("<b>"), "no markup from the name");
    assert.equal(r.counts.sent, 1);
    assert.equal(r.counts.failed, 0);
    await mailer.close();
  });

  test("send() returns at once and never throws, even for an address SMTP refuses", async () => {
    const r = recorder();
    const mailer = createMailer({
      smtpUrl: mailpit.smtpUrl,
      from: "no-reply@social.test",
      outboxDir: "/nonexistent",
      ...r,
      retry: { attempts: 2, firstDelayMs: 10, maxDelayMs: 10 },
    });
    assert.doesNotThrow(() => mailer.send(mailTo("not an address")));
    await mailer.drain(10_000);
    assert.equal(r.counts.failed, 1);
    assert.ok(r.logs.some((l) => l.level === "error" && l.message.includes("given up")));
    await mailer.close();
  });

  test("a server that is down is retried with backoff until it is back; the mail arrives once", async () => {
    const server = mailpit.server;
    assert.ok(server, "needs a Mailpit the test started");
    const r = recorder();
    const mailer = createMailer({
      smtpUrl: mailpit.smtpUrl,
      from: "no-reply@social.test",
      outboxDir: "/nonexistent",
      ...r,
      retry: { attempts: 20, firstDelayMs: 100, maxDelayMs: 400 },
    });
    await server.kill();
    mailer.send(mailTo("retry@example.test"));
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.ok(r.counts.retried >= 2, `retried ${r.counts.retried} times while down`);
    assert.equal(r.counts.sent, 0);
    await server.restart();
    await mailer.drain(15_000);
    assert.equal(r.counts.sent, 1);
    assert.equal(r.counts.failed, 0);
    await mailpit.waitForMail("retry@example.test");
    const copies = (await mailpit.messages()).filter((m) =>
      m.To.some((t) => t.Address === "retry@example.test"),
    );
    assert.equal(copies.length, 1);
    await mailer.close();
  });

  test("a server gone for good: given up after the tries, logged at error without the link, counted", async () => {
    const r = recorder();
    const mailer = createMailer({
      smtpUrl: "smtp://127.0.0.1:9",
      from: "no-reply@social.test",
      outboxDir: "/nonexistent",
      ...r,
      retry: { attempts: 3, firstDelayMs: 20, maxDelayMs: 40 },
    });
    mailer.send(mailTo("gone@example.test", "http://localhost/#reset-password=SECRET-LINK"));
    await mailer.drain(10_000);
    assert.equal(r.counts.retried, 2);
    assert.equal(r.counts.failed, 1);
    const errors = r.logs.filter((l) => l.level === "error");
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? "", /password-reset.*gone@example\.test.*after 3 tries/);
    assert.ok(
      r.logs.every((l) => !l.message.includes("SECRET-LINK")),
      "the link is never logged",
    );
    await mailer.close();
  });
});

describe("without SMTP_URL", () => {
  test("each mail is an .eml file (0600 in a 0700 folder) and its link is logged", async () => {
    const dir = await tempDir();
    const outboxDir = path.join(dir.dir, "outbox");
    const r = recorder();
    const mailer = createMailer({ from: "Social <no-reply@social.test>", outboxDir, ...r });
    mailer.send(mailTo("outbox@example.test", "http://localhost:3000/#reset-password=tok123"));
    mailer.send(mailTo("outbox2@example.test"));
    await mailer.drain(10_000);
    const files = await readdir(outboxDir);
    assert.equal(files.length, 2);
    assert.ok(files.every((f) => /^\d{4}-\d{2}-\d{2}T.*-password-reset-[0-9a-f]{12}\.eml$/.test(f)));
    assert.equal((await stat(outboxDir)).mode & 0o777, 0o700);
    for (const f of files) assert.equal((await stat(path.join(outboxDir, f))).mode & 0o777, 0o600);
    const { readFile } = await import("node:fs/promises");
    const texts = await Promise.all(files.map((f) => readFile(path.join(outboxDir, f), "utf8")));
    const first = decodeQuotedPrintable(texts.find((t) => t.includes("outbox@example.test")) ?? "");
    assert.match(first, /^From: Social <no-reply@social\.test>/m);
    assert.match(first, /^Subject: Reset your password/m);
    assert.match(first, /#reset-password=tok123/);
    assert.ok(r.logs.some((l) => l.level === "info" && l.message.includes("#reset-password=tok123")));
    assert.equal(r.counts.sent, 2);
    await mailer.close();
    await dir.remove();
  });

  test("close() gives up what is still queued, logged and counted", async () => {
    const r = recorder();
    const mailer = createMailer({
      smtpUrl: "smtp://127.0.0.1:9",
      from: "a@social.test",
      outboxDir: "/nonexistent",
      ...r,
      retry: { attempts: 50, firstDelayMs: 5_000, maxDelayMs: 5_000 },
    });
    mailer.send(mailTo("left@example.test"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await mailer.close();
    assert.equal(r.counts.failed, 1);
    mailer.send(mailTo("after@example.test"));
    assert.equal(r.counts.failed, 2, "a mail after close is refused, not dropped silently");
  });
});
