import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Errors } from "moleculer";
import { toHttpError } from "../../../gateway/error-mapping.ts";
import {
  ConflictError,
  InvalidCredentialsError,
  RateLimitedError,
  StoreUnavailableError,
  ValidationFailedError,
} from "../../../lib/errors.ts";

describe("toHttpError", () => {
  test("maps each kind of error to the status of api.md", () => {
    const cases: [unknown, number, string][] = [
      [new ValidationFailedError([{ field: "a", message: "m" }]), 422, "VALIDATION_FAILED"],
      [
        new Errors.ValidationError("bad", "VALIDATION_ERROR", [{ field: "x", type: "string", message: "m" }]),
        422,
        "VALIDATION_FAILED",
      ],
      [new InvalidCredentialsError(), 401, "INVALID_CREDENTIALS"],
      [new ConflictError("taken", "EMAIL_TAKEN", "email"), 409, "EMAIL_TAKEN"],
      [new RateLimitedError(2.2), 429, "RATE_LIMITED"],
      [new StoreUnavailableError(new Error("down")), 503, "SERVICE_UNAVAILABLE"],
      [new Errors.ServiceNotFoundError({ action: "x.y" }), 503, "SERVICE_UNAVAILABLE"],
      [new Errors.RequestTimeoutError({ action: "x.y", nodeID: "n" }), 503, "SERVICE_UNAVAILABLE"],
      [
        new Errors.QueueIsFullError({ action: "x.y", nodeID: "n", size: 1, limit: 1 }),
        503,
        "SERVICE_UNAVAILABLE",
      ],
      [Object.assign(new Error("x"), { type: "entity.parse.failed", status: 400 }), 400, "MALFORMED_JSON"],
      [Object.assign(new Error("x"), { type: "entity.too.large", status: 413 }), 413, "PAYLOAD_TOO_LARGE"],
      [new Error("boom"), 500, "INTERNAL_ERROR"],
      [undefined, 500, "INTERNAL_ERROR"],
    ];
    for (const [err, status, code] of cases) {
      const mapped = toHttpError(err);
      assert.equal(mapped.status, status, `${String(err)}`);
      assert.equal(mapped.body.error.code, code);
    }
  });

  test("429 and 503 carry Retry-After; 401 carries WWW-Authenticate", () => {
    assert.equal(toHttpError(new RateLimitedError(2.2)).headers["Retry-After"], "3");
    assert.equal(toHttpError(new StoreUnavailableError()).headers["Retry-After"], "1");
    assert.match(toHttpError(new InvalidCredentialsError()).headers["WWW-Authenticate"] ?? "", /^Bearer/);
  });

  test("a 500 says nothing of the cause", () => {
    const mapped = toHttpError(new Error("secret connection string mongodb://user:pw@host"));
    assert.equal(JSON.stringify(mapped.body).includes("mongodb"), false);
  });

  test("validation details keep field, type and message but not the rejected value", () => {
    const err = new Errors.ValidationError("bad", "VALIDATION_ERROR", [
      { field: "password", type: "stringMin", message: "too short", actual: "hunter2" },
    ]);
    const body = JSON.stringify(toHttpError(err).body);
    assert.equal(body.includes("hunter2"), false);
    assert.ok(body.includes("password"));
  });
});
