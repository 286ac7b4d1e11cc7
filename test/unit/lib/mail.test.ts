/**
 * The mail subsystem's own logic, no mail server: the templates (escaping, both parts, links only
 * where they belong), the backoff schedule, addresses, the outbox files, and the queue's refusals.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import type { Logger } from "moleculer";
import {
  backoffMs,
  createMailer,
  DEFAULT_RETRY,
  isMailAddress,
  type MailKind,
  type MailMetrics,
  outboxFileName,
  renderMail,
} from "../../../lib/mail/index.ts";
import { MAIL_KINDS } from "../../../lib/metrics.ts";

const LINKED: MailKind[] = ["verify-email", "email-change", "password-reset"];
const NOTICES: MailKind[] = ["email-change-notice", "password-changed", "account-deleted"];
const HOSTILE_NAME = `<img src=x onerror="alert(1)"> & 'Bob'`;

function recorder() {
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
  const counts = { sent: [] as string[], failed: [] as string[], retried: 0, queue: [] as number[] };
  const metrics: MailMetrics = {
    mailSentOne: (kind) => void counts.sent.push(kind),
    mailFailedOne: (kind) => void counts.failed.push(kind),
    mailRetried: () => void counts.retried++,
    mailQueued: (n) => void counts.queue.push(n),
  };
  return { logs, logger, metrics, counts };
}

function mail(to: string, link = "http://localhost:3000/#reset-password=unit-token") {
  return {
    kind: "password-reset" as const,
    to,
    link,
    ...renderMail("password-reset", { displayName: "Ann", link }),
  };
}

describe("renderMail", () => {
  test("every kind of the metrics' label set has a subject, a text part and an HTML part", () => {
    for (const kind of MAIL_KINDS) {
      const out = renderMail(kind, { displayName: "Ann", link: "http://x.test/#t=1", newEmail: "n@x.test" });
      assert.ok(out.subject.length > 0, kind);
      assert.match(out.text, /^Hello Ann,\n/, kind);
      assert.match(out.html, /^<!doctype html>/, kind);
      assert.match(out.html, /<p>Hello Ann,<\/p>/, kind);
    }
  });

  test("the display name is escaped in the HTML and kept as written in the text", () => {
    for (const kind of MAIL_KINDS) {
      const out = renderMail(kind, { displayName: HOSTILE_NAME, link: "http://x.test/#t=1" });
      assert.ok(!out.html.includes("<img"), `${kind}: no markup from the name`);
      assert.ok(
        out.html.includes("&#60;img src=x onerror=&#34;alert(1)&#34;&#62; &#38; &#39;Bob&#39;"),
        kind,
      );
      assert.ok(out.text.includes(`Hello ${HOSTILE_NAME},`), kind);
    }
  });

  test("a mail with a link carries it as text and as an <a> in the HTML, escaped there", () => {
    const link = "http://localhost:3000/#verify-email=abc&x=<1>";
    for (const kind of LINKED) {
      const out = renderMail(kind, { displayName: "Ann", link });
      assert.ok(out.text.includes(`\n${link}\n`), `${kind}: the link on a line of its own`);
      assert.ok(
        out.html.includes('<a href="http://localhost:3000/#verify-email=abc&#38;x=&#60;1&#62;">'),
        kind,
      );
    }
  });

  test("notices carry no link even when given one", () => {
    for (const kind of NOTICES) {
      const out = renderMail(kind, { displayName: "Ann", link: "http://x.test/#reset-password=nope" });
      assert.ok(!out.text.includes("nope"), kind);
      assert.ok(!out.html.includes("nope"), kind);
      assert.ok(!out.html.includes("<a "), kind);
    }
  });

  test("subjects and the validity each mail states", () => {
    const verify = renderMail("verify-email", { displayName: "A", link: "l" });
    assert.equal(verify.subject, "Confirm your email address");
    assert.match(verify.text, /48 hours/);
    assert.match(renderMail("email-change", { displayName: "A", link: "l" }).text, /48 hours/);
    const reset = renderMail("password-reset", { displayName: "A", link: "l" });
    assert.equal(reset.subject, "Reset your password");
    assert.match(reset.text, /30 minutes/);
    assert.match(reset.text, /did not ask for this, ignore this mail/);
    assert.equal(renderMail("password-changed", { displayName: "A" }).subject, "Your password was changed");
    assert.equal(renderMail("account-deleted", { displayName: "A" }).subject, "Your account was deleted");
  });

  test("the notice to the old address names the new one (escaped) and how to secure the account", () => {
    const out = renderMail("email-change-notice", { displayName: "A", newEmail: "<new>@x.test" });
    assert.match(out.text, /change its email address to <new>@x\.test/);
    assert.ok(out.html.includes("&#60;new&#62;@x.test"));
    assert.ok(!out.html.includes("<new>"));
    assert.match(out.text, /change your password now and sign out of every session/);
  });
});

describe("backoffMs", () => {
  test("the default schedule: 1 s before the second try, doubling, 8 tries in all", () => {
    assert.deepEqual(DEFAULT_RETRY, { attempts: 8, firstDelayMs: 1_000, maxDelayMs: 300_000 });
    const waits = [2, 3, 4, 5, 6, 7, 8].map((attempt) => backoffMs(attempt));
    assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000]);
  });

  test("the wait never passes the maximum", () => {
    assert.equal(backoffMs(10), 256_000);
    assert.equal(backoffMs(11), 300_000);
    assert.equal(backoffMs(40), 300_000);
    assert.equal(backoffMs(5, { attempts: 9, firstDelayMs: 100, maxDelayMs: 250 }), 250);
  });
});

describe("isMailAddress", () => {
  test("one mailbox, bare or with a name", () => {
    assert.equal(isMailAddress("ann@example.test"), true);
    assert.equal(isMailAddress("Ann <ann@example.test>"), true);
  });

  test("anything else is refused", () => {
    for (const bad of [
      "",
      "not an address",
      "a@b.test, c@d.test",
      "ann@",
      "@x.test",
      "a@b.test\r\nBcc: c@d.test",
    ])
      assert.equal(isMailAddress(bad), false, JSON.stringify(bad));
    assert.equal(isMailAddress(undefined), false);
    assert.equal(isMailAddress(42), false);
  });
});

describe("outboxFileName", () => {
  test("<ISO 8601 time>-<kind>-<random>.eml, colon-free, sorting by time", () => {
    const name = outboxFileName("verify-email", new Date("2026-12-07T06:50:07.123Z"));
    assert.match(name, /^20261207T065007\.123Z-verify-email-[0-9a-f]{12}\.eml$/);
    const later = outboxFileName("account-deleted", new Date("2026-12-07T06:50:08.000Z"));
    assert.ok(name < later);
    assert.notEqual(outboxFileName("verify-email"), outboxFileName("verify-email"));
  });
});

/** Runs `run` with an outbox path (not made yet) in a temporary folder, removed afterwards. */
async function inTempOutbox(run: (outboxDir: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), "mail-unit-"));
  try {
    await run(path.join(root, "outbox"));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

describe("the outbox mailer", () => {
  test("writes 0600 files and makes an existing outbox folder 0700", async () => {
    await inTempOutbox(async (outboxDir) => {
      await mkdir(outboxDir, { mode: 0o755 });
      await chmod(outboxDir, 0o755);
      const r = recorder();
      const mailer = createMailer({ from: "Social <no-reply@social.test>", outboxDir, ...r });
      mailer.send(mail("ann@example.test"));
      await mailer.drain(5_000);
      assert.equal((await stat(outboxDir)).mode & 0o777, 0o700);
      const [file, ...others] = await readdir(outboxDir);
      assert.equal(others.length, 0);
      assert.match(file ?? "", /^\d{8}T\d{6}\.\d{3}Z-password-reset-[0-9a-f]{12}\.eml$/);
      const eml = path.join(outboxDir, file ?? "");
      assert.equal((await stat(eml)).mode & 0o777, 0o600);
      assert.match(await readFile(eml, "utf8"), /^To: ann@example\.test$/m);
      assert.deepEqual(r.counts.sent, ["password-reset"]);
      await mailer.close();
    });
  });

  test("an outbox folder removed between mails is made again, 0700, and the next mail lands in it", async () => {
    await inTempOutbox(async (outboxDir) => {
      const r = recorder();
      const mailer = createMailer({ from: "a@social.test", outboxDir, ...r });
      mailer.send(mail("ann@example.test"));
      await mailer.drain(5_000);
      assert.equal((await readdir(outboxDir)).length, 1);
      await rm(outboxDir, { recursive: true });
      mailer.send(mail("bob@example.test"));
      await mailer.drain(5_000);
      assert.deepEqual(r.counts.sent, ["password-reset", "password-reset"]);
      assert.deepEqual(r.counts.failed, []);
      const [file, ...others] = await readdir(outboxDir);
      assert.equal(others.length, 0);
      assert.equal((await stat(outboxDir)).mode & 0o777, 0o700);
      assert.match(await readFile(path.join(outboxDir, file ?? ""), "utf8"), /^To: bob@example\.test$/m);
      await mailer.close();
    });
  });

  test("send() returns before anything is written, and never throws on garbage", async () => {
    await inTempOutbox(async (outboxDir) => {
      const r = recorder();
      const mailer = createMailer({ from: "a@social.test", outboxDir, ...r });
      mailer.send(mail("ann@example.test"));
      assert.deepEqual(r.counts.sent, [], "nothing done inside send()");
      assert.deepEqual(r.counts.queue, [1]);
      assert.doesNotThrow(() => mailer.send(mail("not an address")));
      assert.doesNotThrow(() => mailer.send(null as never));
      assert.doesNotThrow(() => mailer.send({} as never));
      await mailer.drain(5_000);
      assert.deepEqual(r.counts.sent, ["password-reset"]);
      assert.equal(r.counts.failed.length, 2, "the bad address and the empty mail are counted failed");
      assert.equal((await readdir(outboxDir)).length, 1);
      assert.ok(r.logs.some((l) => l.level === "error" && /not a mail address/.test(l.message)));
      await mailer.close();
    });
  });

  test("a full queue refuses the mail: logged at error and counted failed, the others still go", async () => {
    await inTempOutbox(async (outboxDir) => {
      const r = recorder();
      const mailer = createMailer({ from: "a@social.test", outboxDir, ...r, maxQueue: 2 });
      mailer.send(mail("one@example.test"));
      mailer.send(mail("two@example.test"));
      mailer.send(mail("three@example.test"));
      assert.deepEqual(r.counts.failed, ["password-reset"]);
      const refused = r.logs.filter((l) => l.level === "error");
      assert.equal(refused.length, 1);
      assert.match(refused[0]?.message ?? "", /three@example\.test.*queue is full/);
      assert.ok(!refused[0]?.message.includes("unit-token"), "never the link");
      await mailer.drain(5_000);
      assert.equal((await readdir(outboxDir)).length, 2);
      assert.equal(r.counts.queue.at(-1), 0, "the gauge is back to 0");
      await mailer.close();
    });
  });

  test("an outbox that cannot be written is retried with backoff, then given up", async () => {
    await inTempOutbox(async (outboxDir) => {
      // A file where the folder should be: every write fails.
      await writeFile(outboxDir, "");
      const r = recorder();
      const mailer = createMailer({
        from: "a@social.test",
        outboxDir,
        ...r,
        retry: { attempts: 3, firstDelayMs: 10, maxDelayMs: 20 },
      });
      const started = Date.now();
      mailer.send(mail("ann@example.test"));
      await mailer.drain(5_000);
      assert.ok(Date.now() - started >= 30, "waited 10 ms then 20 ms between the tries");
      assert.equal(r.counts.retried, 2);
      assert.deepEqual(r.counts.failed, ["password-reset"]);
      assert.equal(r.logs.filter((l) => l.level === "warn").length, 2);
      assert.match(r.logs.find((l) => l.level === "error")?.message ?? "", /given up after 3 tries/);
      await mailer.close();
    });
  });
});
