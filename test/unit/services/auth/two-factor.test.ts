import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffMs, DEFAULT_RETRY, outboxFileName, renderMail } from "../../../../lib/mail/index.ts";
import {
  findRecoveryCode,
  hashRecoveryCode,
  looksLikeTotp,
  newRecoveryCodes,
  newTotpSecret,
  TOTP_PERIOD_S,
  totpCode,
  totpStep,
  totpUri,
} from "../../../../services/auth/two-factor.ts";

describe("TOTP", () => {
  const secret = newTotpSecret();
  const at = 1_800_000_000_000;
  const step = Math.floor(at / 1000 / TOTP_PERIOD_S);

  test("a secret is 160 bits of base32, and its URI names issuer, account and secret", () => {
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const uri = totpUri(secret, "ann@example.test", "Social");
    assert.match(uri, /^otpauth:\/\/totp\/Social:ann%40example\.test\?/);
    assert.ok(uri.includes(`secret=${secret}`));
    assert.ok(uri.includes("issuer=Social"));
  });

  test("a code is taken within one step either side, with the step it belongs to", () => {
    assert.equal(totpStep(secret, totpCode(secret, at), at), step);
    assert.equal(totpStep(secret, totpCode(secret, at - 30_000), at), step - 1);
    assert.equal(totpStep(secret, totpCode(secret, at + 30_000), at), step + 1);
    assert.equal(totpStep(secret, totpCode(secret, at + 60_000), at), undefined);
    assert.equal(totpStep(secret, totpCode(secret, at - 60_000), at), undefined);
  });

  test("another secret's code, or a wrong one, is refused", () => {
    const code = totpCode(newTotpSecret(), at);
    const own = totpCode(secret, at);
    if (code !== own) assert.equal(totpStep(secret, code, at), undefined);
    const wrong = String((Number(own) + 1) % 1_000_000).padStart(6, "0");
    assert.equal(totpStep(secret, wrong, at), undefined);
  });

  test("a TOTP code looks like six digits; recovery codes do not", () => {
    assert.ok(looksLikeTotp("123456"));
    assert.ok(looksLikeTotp(" 123456 "));
    assert.ok(!looksLikeTotp("12345"));
    assert.ok(!looksLikeTotp("k7m2p-x9qrt"));
  });
});

describe("recovery codes", () => {
  test("ten distinct codes of two groups of five, without look-alike characters", () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const code of codes) assert.match(code, /^[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}$/);
  });

  test("found by hash whatever the case, spaces and dashes; an unknown one is -1", () => {
    const codes = newRecoveryCodes();
    const hashes = codes.map(hashRecoveryCode);
    const third = codes[2] ?? "";
    assert.equal(findRecoveryCode(hashes, third), 2);
    assert.equal(findRecoveryCode(hashes, third.toUpperCase().replace("-", " ")), 2);
    assert.equal(findRecoveryCode(hashes, "aaaaa-aaaaa"), -1);
    assert.equal(findRecoveryCode([], third), -1);
  });
});

describe("mail", () => {
  test("templates escape the display name in the HTML and keep it as text in the plain part", () => {
    const mail = renderMail("verify-email", {
      displayName: '<img src=x onerror="alert(1)">',
      link: "https://s.test/#verify-email=t",
    });
    assert.ok(mail.text.startsWith('Hello <img src=x onerror="alert(1)">,'));
    assert.ok(!mail.html.includes("<img"));
    assert.ok(mail.html.includes("&#60;img src=x onerror=&#34;alert(1)&#34;&#62;"));
    assert.ok(mail.html.includes('href="https://s.test/#verify-email=t"'));
    assert.ok(mail.text.includes("https://s.test/#verify-email=t"));
  });

  test("every kind has a subject; notices carry no link", () => {
    for (const kind of [
      "verify-email",
      "email-change",
      "email-change-notice",
      "password-reset",
      "password-changed",
      "account-deleted",
    ] as const) {
      const mail = renderMail(kind, { displayName: "Ann", newEmail: "new@example.test" });
      assert.ok(mail.subject.length > 0, kind);
      assert.ok(!mail.html.includes("href"), kind);
    }
    assert.match(
      renderMail("email-change-notice", { displayName: "Ann", newEmail: "new@example.test" }).text,
      /new@example\.test/,
    );
  });

  test("backoff doubles from the first delay up to the cap", () => {
    const waits = [2, 3, 4, 5, 10, 20].map((attempt) => backoffMs(attempt, DEFAULT_RETRY));
    assert.deepEqual(waits.slice(0, 4), [1_000, 2_000, 4_000, 8_000]);
    assert.equal(waits[5], DEFAULT_RETRY.maxDelayMs);
  });

  test("outbox files sort by time and differ", () => {
    const a = outboxFileName("password-reset", new Date("2026-01-01T00:00:00Z"));
    const b = outboxFileName("password-reset", new Date("2026-01-01T00:00:00Z"));
    assert.notEqual(a, b);
    assert.match(a, /^20260101T000000\.000Z-password-reset-[0-9a-f]{12}\.eml$/);
  });
});
