export { type Courier, type OutgoingMail, outboxFileName } from "./couriers.ts";
export {
  backoffMs,
  createMailer,
  DEFAULT_RETRY,
  isMailAddress,
  MAX_QUEUE,
  type Mailer,
  type MailerOptions,
  type MailMetrics,
  type RetryPolicy,
} from "./mailer.ts";
export { escapeHtml, type MailFields, type MailKind, type RenderedMail, renderMail } from "./templates.ts";
