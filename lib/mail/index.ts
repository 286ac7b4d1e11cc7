export {
  backoffMs,
  createMailer,
  DEFAULT_RETRY,
  type Mailer,
  type MailerOptions,
  type OutgoingMail,
  outboxFileName,
  type RetryPolicy,
} from "./mailer.ts";
export { escapeHtml, type MailFields, type MailKind, type RenderedMail, renderMail } from "./templates.ts";
