/**
 * The one place where errors become HTTP answers (api.md, "Status codes"). Client errors keep
 * their UPPER_SNAKE type as `error.code`; anything that means "a service or the store is not there
 * right now" is a 503 with Retry-After; anything else is a 500 whose details stay in the logs.
 */
export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string; details?: unknown } };
}

interface ErrorLike {
  name?: string;
  message?: string;
  code?: unknown;
  status?: unknown;
  type?: unknown;
  data?: unknown;
}

/** Moleculer and moleculer-web error types that all mean: not reachable now, try again. */
const UNAVAILABLE_TYPES = new Set([
  "SERVICE_NOT_FOUND",
  "SERVICE_NOT_AVAILABLE",
  "REQUEST_TIMEOUT",
  "REQUEST_SKIPPED",
  "REQUEST_REJECTED",
  "QUEUE_FULL",
  "BROKER_DISCONNECTED",
  "SERVICE_UNAVAILABLE",
  "STORE_UNAVAILABLE",
  "NOT_READY",
]);

const BODY_PARSER_ERRORS: Record<string, [number, string, string]> = {
  "entity.parse.failed": [400, "MALFORMED_JSON", "The body is not valid JSON"],
  "entity.too.large": [413, "PAYLOAD_TOO_LARGE", "The body is too large"],
  "entity.verify.failed": [400, "MALFORMED_JSON", "The body could not be read"],
  "request.aborted": [400, "BAD_REQUEST", "The request was aborted"],
  "request.size.invalid": [400, "BAD_REQUEST", "The body length does not match Content-Length"],
  "charset.unsupported": [415, "UNSUPPORTED_MEDIA_TYPE", "The body's charset must be utf-8"],
};

const MOLECULER_WEB_CLIENT_ERRORS: Record<string, [number, string, string]> = {
  NOT_FOUND: [404, "NOT_FOUND", "Not found"],
  NO_TOKEN: [401, "UNAUTHORIZED", "A valid access token is required"],
  INVALID_TOKEN: [401, "UNAUTHORIZED", "A valid access token is required"],
  INVALID_REQUEST_BODY: [400, "MALFORMED_JSON", "The body is not valid JSON"],
  PAYLOAD_TOO_LARGE: [413, "PAYLOAD_TOO_LARGE", "The body is too large"],
  UNABLE_DECODE_PARAM: [400, "BAD_REQUEST", "A URL parameter could not be decoded"],
};

export function toHttpError(raw: unknown): HttpError {
  const err = (raw ?? {}) as ErrorLike;
  const type = typeof err.type === "string" ? err.type : "";
  const code = typeof err.code === "number" ? err.code : typeof err.status === "number" ? err.status : 500;

  const parser = BODY_PARSER_ERRORS[type];
  if (parser) return plain(parser[0], parser[1], parser[2]);
  if (UNAVAILABLE_TYPES.has(type) || code === 503) {
    const retryAfter = retryAfterOf(err.data) ?? 1;
    return {
      ...plain(503, "SERVICE_UNAVAILABLE", "A needed service is unavailable; try again shortly"),
      headers: { "Retry-After": String(retryAfter) },
    };
  }
  if (type === "VALIDATION_ERROR") {
    return plain(422, "VALIDATION_FAILED", "Validation failed", validationDetails(err.data));
  }
  const known = MOLECULER_WEB_CLIENT_ERRORS[type];
  if (known && code === known[0]) return withAuthHeader(plain(known[0], known[1], known[2]));
  if (code >= 400 && code < 500 && /^[A-Z][A-Z0-9_]*$/.test(type)) {
    const allow = allowOf(err.data);
    if (code === 405 && allow) {
      return { ...plain(405, type, err.message ?? type), headers: { Allow: allow } };
    }
    if (code === 429) {
      return {
        ...plain(429, type, err.message ?? "Too many requests"),
        headers: { "Retry-After": String(retryAfterOf(err.data) ?? 1) },
      };
    }
    return withAuthHeader(
      plain(code, type, err.message ?? type, Array.isArray(err.data) ? err.data : detailsOf(err.data)),
    );
  }
  return plain(500, "INTERNAL_ERROR", "Internal error");
}

function plain(status: number, code: string, message: string, details?: unknown): HttpError {
  const error: HttpError["body"]["error"] = { code, message };
  if (details !== undefined) error.details = details;
  return { status, headers: {}, body: { error } };
}

function withAuthHeader(e: HttpError): HttpError {
  if (e.status !== 401) return e;
  return { ...e, headers: { ...e.headers, "WWW-Authenticate": 'Bearer error="invalid_token"' } };
}

/** Details an error gives as an object (`{details: {...}}`: a limit it names, for instance). */
function detailsOf(data: unknown): Record<string, unknown> | undefined {
  const details = (data as { details?: unknown } | undefined)?.details;
  return details !== null && typeof details === "object" && !Array.isArray(details)
    ? (details as Record<string, unknown>)
    : undefined;
}

function allowOf(data: unknown): string | undefined {
  const allow = (data as { allow?: unknown } | undefined)?.allow;
  return Array.isArray(allow) && allow.every((m) => typeof m === "string") ? allow.join(", ") : undefined;
}

function retryAfterOf(data: unknown): number | undefined {
  const value = (data as { retryAfter?: unknown } | undefined)?.retryAfter;
  return typeof value === "number" && value > 0 ? Math.ceil(value) : undefined;
}

interface Issue {
  field?: unknown;
  type?: unknown;
  message?: unknown;
  expected?: unknown;
  actual?: unknown;
}

/** Fields whose values are never quoted back, whatever the issue. */
const SECRET_FIELD = /password|token|secret/i;

/**
 * fastest-validator's issues, each message naming the field, what is accepted and, where the
 * value is short and not a secret, what was sent. Its own `enumValue` message prints the allowed
 * list where the sent value belongs, and its `stringPattern` one gives no pattern; both are
 * written here (a rule's own `messages` entry wins over the second).
 */
function validationDetails(data: unknown): { field: string; type: string; message: string }[] {
  if (!Array.isArray(data)) return [];
  return data.flatMap((issue: Issue) => {
    if (issue.type === "objectStrict" && typeof issue.actual === "string") {
      // fastest-validator names the unknown keys in `actual`; report one issue per key.
      return issue.actual.split(", ").map((key) => ({
        field: issue.field ? `${issue.field}.${key}` : key,
        type: "unknownField",
        message: `Unknown field '${key}'`,
      }));
    }
    const field = String(issue.field ?? "");
    return [{ field, type: String(issue.type ?? ""), message: messageOf(field, issue) }];
  });
}

const DEFAULT_PATTERN_MESSAGE = "field fails to match the required pattern.";

function messageOf(field: string, issue: Issue): string {
  const message = String(issue.message ?? "");
  const sent = SECRET_FIELD.test(field) ? undefined : quoted(issue.actual);
  const got = sent === undefined ? "" : `; got ${sent}`;
  switch (issue.type) {
    case "enumValue":
      return `The '${field}' field must be one of: ${String(issue.expected ?? "")}${got}`;
    case "stringPattern":
      return message.endsWith(DEFAULT_PATTERN_MESSAGE)
        ? `The '${field}' field must match the pattern ${String(issue.expected ?? "")}${got}`
        : `${message.replace(/\.$/, "")}${got}`;
    case "email":
      return `The '${field}' field must be an email address such as name@example.com${got}`;
    default:
      return message;
  }
}

/** A short printable value as JSON, or undefined for anything long, binary or structured. */
function quoted(value: unknown): string | undefined {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value !== "string" || value.length > 64 || /[^\x20-\x7e\u00a0-\uffff]/.test(value)) {
    return undefined;
  }
  return JSON.stringify(value);
}
