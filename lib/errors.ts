/**
 * Every error the platform raises on purpose. Client errors (4xx) carry an UPPER_SNAKE `type` that
 * the gateway turns into the `error.code` of api.md; retryable errors (store down, a service
 * missing) may pass on retry and map to 503. The gateway's status mapping lives in
 * gateway/error-mapping.ts and nowhere else.
 */
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerRetryableError } = Errors;

export interface FieldIssue {
  field: string;
  message: string;
  type?: string;
}

export class ValidationFailedError extends MoleculerClientError {
  constructor(details: FieldIssue[], message = "Validation failed") {
    super(message, 422, "VALIDATION_FAILED", details);
  }
}

export class WeakPasswordError extends MoleculerClientError {
  constructor(field = "password") {
    super("This password is too common; choose another", 422, "VALIDATION_FAILED", [
      { field, type: "passwordCommon", message: "This password is among the most common ones" },
    ] satisfies FieldIssue[]);
  }
}

export class InvalidCredentialsError extends MoleculerClientError {
  constructor() {
    super("Invalid credentials", 401, "INVALID_CREDENTIALS");
  }
}

export class UnauthorizedError extends MoleculerClientError {
  constructor(message = "A valid access token is required", type = "UNAUTHORIZED") {
    super(message, 401, type);
  }
}

export class InvalidRefreshTokenError extends MoleculerClientError {
  constructor() {
    super("The refresh token is invalid, expired or already used", 401, "INVALID_REFRESH_TOKEN");
  }
}

export class ForbiddenError extends MoleculerClientError {
  constructor(message = "Not allowed", type = "FORBIDDEN") {
    super(message, 403, type);
  }
}

export class NotFoundError extends MoleculerClientError {
  constructor(what: string, type = "NOT_FOUND") {
    super(`${what} not found`, 404, type);
  }
}

export class ConflictError extends MoleculerClientError {
  constructor(message: string, type: string, field: string) {
    super(message, 409, type, [{ field, message }] satisfies FieldIssue[]);
  }
}

/** A body over a limit: `details` names the limit (an upload's size or its owner's quota). */
export class PayloadTooLargeError extends MoleculerClientError {
  constructor(message: string, type: string, details: Record<string, number>) {
    super(message, 413, type, { details });
  }
}

export class UnsupportedMediaTypeError extends MoleculerClientError {
  constructor(message: string, type: string, details: Record<string, string>) {
    super(message, 415, type, { details });
  }
}

export class RateLimitedError extends MoleculerClientError {
  constructor(retryAfterSeconds: number) {
    super("Too many requests; try again later", 429, "RATE_LIMITED", {
      retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)),
    });
  }
}

export class ServiceUnavailableError extends MoleculerRetryableError {
  constructor(message = "Service temporarily unavailable", type = "SERVICE_UNAVAILABLE", cause?: unknown) {
    super(message, 503, type, cause === undefined ? undefined : { cause: describe(cause) });
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

export class StoreUnavailableError extends ServiceUnavailableError {
  constructor(cause?: unknown) {
    super("The store is unavailable", "STORE_UNAVAILABLE", cause);
  }
}

export { DuplicateKeyError } from "./store/store-errors.ts";

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
