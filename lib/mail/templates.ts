/**
 * The platform's mails, each as plain text and a simple HTML twin. The display name is the user's
 * own words: it is escaped in the HTML (and is only text in the plain part), so a name such as
 * `<a href=...>` shows as written and links nowhere.
 */
import type { MailKindLabel } from "../metrics.ts";

export type MailKind = MailKindLabel;

export interface MailFields {
  displayName: string;
  link?: string;
  newEmail?: string;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Template {
  subject: string;
  lines(f: MailFields): string[];
  /** The text of the link's button, when the mail has one. */
  action?: string;
  after?: string[];
}

const TEMPLATES: Record<MailKind, Template> = {
  "verify-email": {
    subject: "Confirm your email address",
    lines: () => [
      "Confirm that this address is yours by opening the link below. It works once, for 48 hours.",
    ],
    action: "Confirm my address",
    after: ["If you did not make an account, ignore this mail: nothing happens without the link."],
  },
  "email-change": {
    subject: "Confirm your new email address",
    lines: () => [
      "Your account asked to move to this address. Open the link below to confirm it; it works once, for 48 hours.",
    ],
    action: "Confirm the new address",
    after: ["If you did not ask for this, ignore this mail: the account keeps its old address."],
  },
  "email-change-notice": {
    subject: "Your email address is being changed",
    lines: (f) => [
      `Someone signed in to your account asked to change its email address to ${f.newEmail ?? "another address"}.`,
      "The change happens only once the link mailed to that address is opened.",
      "If this was not you, change your password now and sign out of every session.",
    ],
  },
  "password-reset": {
    subject: "Reset your password",
    lines: () => ["Open the link below to choose a new password. It works once, for 30 minutes."],
    action: "Choose a new password",
    after: ["If you did not ask for this, ignore this mail: your password stays as it is."],
  },
  "password-changed": {
    subject: "Your password was changed",
    lines: () => [
      "The password of your account was just changed, and its other sessions were signed out.",
      "If this was not you, reset your password at once with the 'Forgot password?' link.",
    ],
  },
  "account-deleted": {
    subject: "Your account was deleted",
    lines: () => ["Your account was deleted as you asked. This is the last mail you get from us."],
  },
};

export function renderMail(kind: MailKind, fields: MailFields): RenderedMail {
  const t = TEMPLATES[kind];
  const greeting = `Hello ${fields.displayName},`;
  const body = t.lines(fields);
  const after = t.after ?? [];
  // Only the mails made to carry a link show one: a notice never does, whatever it is given.
  const link = t.action ? fields.link : undefined;
  const text = [
    greeting,
    "",
    ...body,
    ...(link ? ["", link] : []),
    ...(after.length ? ["", ...after] : []),
    "",
  ].join("\n");
  const paragraphs = body.map((line) => `<p>${escapeHtml(line)}</p>`).join("\n");
  const button =
    link && t.action
      ? `<p><a href="${escapeHtml(link)}">${escapeHtml(t.action)}</a></p>\n<p style="color:#555">${escapeHtml(link)}</p>`
      : "";
  const html = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"></head><body style="font-family:sans-serif;line-height:1.5">',
    `<p>${escapeHtml(greeting)}</p>`,
    paragraphs,
    button,
    ...after.map((line) => `<p style="color:#555">${escapeHtml(line)}</p>`),
    "</body></html>",
  ]
    .filter(Boolean)
    .join("\n");
  return { subject: t.subject, text, html };
}
