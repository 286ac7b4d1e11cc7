/**
 * The mailer against a real SMTP server (Mailpit, test/harness/mailpit.ts): mails arrive whole, a
 * server that is down is retried until it is back, one gone for good ends in a logged, counted
 * failure; and without SMTP_URL, mails are .eml files readable only by the node's user. Metrics are
 * the platform's own, registered on a real broker and read back from its registry.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Logger, ServiceBroker } from "moleculer";
import { createMailer, type MailKind, type OutgoingMail, renderMail } from "../../lib/mail/index.ts";
import { METRIC, platformMetrics } from "../../lib/metrics.ts";
import { type MailpitHandle, startMailpit } from "../harness/mailpit.ts";
import { freePort } from "../harness/servers.ts";

const FROM = "Social <no-reply@social.test>";

let mailpit: MailpitHandle;
before(async () => {
  mailpit = await startMailpit();
});
after(() => mailpit?.stop());

/** A logger that keeps what it is given, and the platform metrics of a broker of its own. */
function observed() {
  const logs: { level: string; message: string }[] = [];
  const at =
    (level: string) =>
    (...args: unknown[]) =>
      logs.push({ level, message: args.map(String).join(" ") });
  const logger: Logger = {
    fatal: at("fatal"),
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    trace: at("trace"),
  };
  const broker = new ServiceBroker({ logger: false, metrics: { enabled: true, reporter: [] } });
  const metrics = platformMetrics(broker);
  assert.ok(metrics);
  const value = (name: string, labels?: Record<string, string>): number =>
    (broker.metrics.getMetric(name)?.get(labels) as { value?: number } | null)?.value ?? 0;
  return {
    logs,
    logger,
    metrics,
    sent: (kind: MailKind) => value(METRIC.MAIL_SENT, { kind }),
    failed: (kind: MailKind) => value(METRIC.MAIL_FAILED, { kind }),
    retries: () => value(METRIC.MAIL_RETRIES),
    queue: () => value(METRIC.MAIL_QUEUE),
    errors: () => logs.filter((l) => l.level === "error"),
  };
}

function resetMail(
  to: string,
  link = `http://localhost:3000/#reset-password=${"t".repeat(43)}`,
): OutgoingMail {
  return {
    kind: "password-reset",
    to,
    link,
    ...renderMail("password-reset", { displayName: "Ann <b>", link }),
  };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function copiesTo(address: string): Promise<number> {
  return (await mailpit.messages()).filter((m) => m.To.some((t) => t.Address === address)).length;
}

describe("over SMTP", () => {
  test("a mail arrives with the configured From, its subject, a text and an HTML part", async () => {
    const o = observed();
    const mailer = createMailer({ smtpUrl: mailpit.smtpUrl, from: FROM, outboxDir: "/nonexistent", ...o });
    const link = "http://localhost:3000/#verify-email=abcDEF_123";
    mailer.send({
      kind: "verify-email",
      to: "ann@example.test",
      link,
      ...renderMail("verify-email", { displayName: "Ann <b>", link }),
    });
    await mailer.drain(10_000);
    const mail = await mailpit.waitForMail("ann@example.test", { timeoutMs: 5_000 });
    assert.equal(mail.from, FROM);
    assert.deepEqual(mail.to, ["ann@example.test"]);
    assert.equal(mail.subject, "Confirm your email address");
    assert.match(mail.text, /^Hello Ann <b>,/);
    assert.ok(mail.text.includes(link));
    assert.ok(mail.html.includes(`<a href="${link}">`));
    assert.match(mail.html, /Hello Ann &#60;b&#62;,/);
    assert.ok(!mail.html.includes("<b>"), "no markup from the name");
    assert.equal(o.sent("verify-email"), 1);
    assert.equal(o.failed("verify-email"), 0);
    assert.equal(o.queue(), 0);
    await mailer.close();
  });

  test("drain() resolves only once every queued mail was handed over", async () => {
    const o = observed();
    const mailer = createMailer({ smtpUrl: mailpit.smtpUrl, from: FROM, outboxDir: "/nonexistent", ...o });
    const to = Array.from({ length: 25 }, (_, i) => `drain-${i}@example.test`);
    for (const address of to) mailer.send(resetMail(address));
    assert.equal(o.queue(), 25, "queued, none sent inside send()");
    await mailer.drain(20_000);
    assert.equal(o.sent("password-reset"), 25);
    assert.equal(o.queue(), 0);
    // Read once, no polling: every mail is in Mailpit when drain() resolves.
    const arrived = new Set((await mailpit.messages()).flatMap((m) => m.To.map((t) => t.Address)));
    assert.deepEqual(
      to.filter((address) => !arrived.has(address)),
      [],
    );
    await mailer.close();
  });

  test("SMTP down when the mail is sent: retried with backoff, delivered once it is back, once", async () => {
    const o = observed();
    const mailer = createMailer({
      smtpUrl: mailpit.smtpUrl,
      from: FROM,
      outboxDir: "/nonexistent",
      ...o,
      retry: { attempts: 30, firstDelayMs: 100, maxDelayMs: 400 },
    });
    await mailpit.kill();
    try {
      mailer.send(resetMail("retry@example.test"));
      await until(() => o.retries() >= 3, 10_000, "three retries while SMTP is down");
      assert.equal(o.sent("password-reset"), 0);
      assert.equal(o.queue(), 1, "the mail waits in the queue");
      assert.ok(
        o.logs.some(
          (l) => l.level === "warn" && /retry@example\.test failed .*try \d+ of 30/.test(l.message),
        ),
      );
    } finally {
      await mailpit.restart();
    }
    await mailer.drain(15_000);
    assert.equal(o.sent("password-reset"), 1);
    assert.equal(o.failed("password-reset"), 0);
    assert.equal(o.queue(), 0);
    await mailpit.waitForMail("retry@example.test", { timeoutMs: 5_000 });
    assert.equal(await copiesTo("retry@example.test"), 1);
    assert.ok(
      o.logs.every((l) => !l.message.includes("#reset-password=")),
      "the link is never logged",
    );
    await mailer.close();
  });

  test("a 4xx answer is tried again; a 5xx answer is final at once", async () => {
    const o = observed();
    const mailer = createMailer({
      smtpUrl: mailpit.smtpUrl,
      from: FROM,
      outboxDir: "/nonexistent",
      ...o,
      retry: { attempts: 30, firstDelayMs: 50, maxDelayMs: 100 },
    });
    try {
      await mailpit.chaos({ Recipient: { ErrorCode: 451, Probability: 100 } });
      mailer.send(resetMail("busy@example.test"));
      await until(() => o.retries() >= 2, 10_000, "retries of a 451");
      await mailpit.chaos({});
      await mailer.drain(10_000);
      assert.equal(o.sent("password-reset"), 1);
      assert.equal(await copiesTo("busy@example.test"), 1);

      const retriesBefore = o.retries();
      await mailpit.chaos({ Recipient: { ErrorCode: 550, Probability: 100 } });
      mailer.send(resetMail("refused@example.test"));
      await mailer.drain(10_000);
      assert.equal(o.retries(), retriesBefore, "no retry after a 550");
      assert.equal(o.failed("password-reset"), 1);
      assert.match(o.errors()[0]?.message ?? "", /refused@example\.test was given up after 1 try: .*550/);
    } finally {
      await mailpit.chaos({});
    }
    assert.equal(await copiesTo("refused@example.test"), 0);
    await mailer.close();
  });

  test("SMTP gone for good: given up after the tries, logged at error without the link, counted failed", async () => {
    const o = observed();
    const mailer = createMailer({
      smtpUrl: `smtp://127.0.0.1:${await freePort()}`,
      from: FROM,
      outboxDir: "/nonexistent",
      ...o,
      retry: { attempts: 4, firstDelayMs: 20, maxDelayMs: 40 },
    });
    const link = "http://localhost/#reset-password=SECRET-LINK-TOKEN";
    mailer.send(resetMail("gone@example.test", link));
    await mailer.drain(10_000);
    assert.equal(o.retries(), 3);
    assert.equal(o.failed("password-reset"), 1);
    assert.equal(o.sent("password-reset"), 0);
    assert.equal(o.queue(), 0);
    const errors = o.errors();
    assert.equal(errors.length, 1);
    assert.match(
      errors[0]?.message ?? "",
      /\(password-reset\) to gone@example\.test was given up after 4 tries/,
    );
    assert.ok(
      o.logs.every((l) => !l.message.includes("SECRET-LINK-TOKEN")),
      "the link is never logged",
    );
    await mailer.close();
  });

  test("send() never throws: a bad address is refused and counted, the good mails beside it go", async () => {
    const o = observed();
    const mailer = createMailer({ smtpUrl: mailpit.smtpUrl, from: FROM, outboxDir: "/nonexistent", ...o });
    assert.doesNotThrow(() => {
      mailer.send(resetMail("not an address"));
      mailer.send(resetMail("victim@example.test\r\nBcc: injected@example.test"));
      mailer.send(resetMail("two@example.test, three@example.test"));
      mailer.send(undefined as never);
      mailer.send(resetMail("good@example.test"));
    });
    await mailer.drain(10_000);
    assert.equal(o.failed("password-reset"), 3);
    assert.equal(o.sent("password-reset"), 1);
    await mailpit.waitForMail("good@example.test", { timeoutMs: 5_000 });
    for (const address of [
      "injected@example.test",
      "victim@example.test",
      "two@example.test",
      "three@example.test",
    ])
      assert.equal(await copiesTo(address), 0, address);
    assert.equal(o.errors().length, 4, "each refusal, the undefined mail too, logged at error");
    await mailer.close();
  });

  test("drain(timeout) gives up waiting at the timeout; close() then gives up the mail, counted", async () => {
    const o = observed();
    const mailer = createMailer({
      smtpUrl: `smtp://127.0.0.1:${await freePort()}`,
      from: FROM,
      outboxDir: "/nonexistent",
      ...o,
      retry: { attempts: 50, firstDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    mailer.send(resetMail("later@example.test"));
    const started = Date.now();
    await mailer.drain(300);
    const waited = Date.now() - started;
    assert.ok(waited >= 290 && waited < 5_000, `drain waited ${waited} ms`);
    assert.equal(o.queue(), 1);
    assert.equal(o.failed("password-reset"), 0);
    await mailer.close();
    assert.equal(o.failed("password-reset"), 1);
    assert.equal(o.queue(), 0);
    assert.match(
      o.errors()[0]?.message ?? "",
      /later@example\.test was given up after 1 try: the node stopped/,
    );
    mailer.send(resetMail("after@example.test"));
    assert.equal(o.failed("password-reset"), 2, "a mail after close() is refused, not dropped silently");
  });
});

describe("without SMTP_URL", () => {
  test("each mail is an .eml file (0600, in a 0700 folder) and its link is logged at info", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "mail-outbox-"));
    try {
      const outboxDir = path.join(root, "data", "outbox");
      const o = observed();
      const mailer = createMailer({ from: FROM, outboxDir, ...o });
      const link = `http://localhost:3000/#reset-password=${"k".repeat(43)}`;
      mailer.send(resetMail("outbox@example.test", link));
      mailer.send({
        kind: "account-deleted",
        to: "outbox2@example.test",
        ...renderMail("account-deleted", { displayName: "Bo" }),
      });
      await mailer.drain(10_000);
      assert.equal((await stat(outboxDir)).mode & 0o777, 0o700);
      const files = (await readdir(outboxDir)).sort();
      assert.equal(files.length, 2);
      for (const f of files) {
        assert.match(f, /^\d{8}T\d{6}\.\d{3}Z-(password-reset|account-deleted)-[0-9a-f]{12}\.eml$/);
        assert.equal((await stat(path.join(outboxDir, f))).mode & 0o777, 0o600);
      }
      const resetFile = files.find((f) => f.includes("-password-reset-")) ?? "";
      const eml = await readFile(path.join(outboxDir, resetFile), "utf8");
      assert.match(eml, /^From: Social <no-reply@social\.test>$/m);
      assert.match(eml, /^To: outbox@example\.test$/m);
      assert.match(eml, /^Subject: Reset your password$/m);
      assert.match(eml, /^Content-Type: multipart\/alternative;/m);
      assert.match(eml, /^Content-Type: text\/plain; charset=utf-8$/m);
      assert.match(eml, /^Content-Type: text\/html; charset=utf-8$/m);
      const info = o.logs.filter((l) => l.level === "info");
      assert.equal(info.length, 2);
      assert.ok(info.some((l) => l.message.includes(link) && l.message.includes(resetFile)));
      assert.equal(o.sent("password-reset"), 1);
      assert.equal(o.sent("account-deleted"), 1);
      await mailer.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
