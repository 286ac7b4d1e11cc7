/**
 * What the API routes do with a request's body and query before any action sees them (the
 * moleculer-web route middlewares of gateway.service.ts):
 *
 * - a body is JSON sent as `application/json` (or `application/*+json`); any other type is 415
 *   naming the accepted one, where it used to be skipped unread and answered "field required";
 * - `Content-Encoding` gzip, deflate, br (and zstd) is decoded, with the size limit applied to
 *   the decoded bytes; bytes that do not decode are 400 INVALID_CONTENT_ENCODING, a client
 *   error (they used to surface as a 500 with a stack trace in the log);
 * - the body is a JSON object (an array is 422), and no key of the body or the query, at any
 *   depth, is `__proto__`, `constructor` or `prototype` (422, an unknown field; lib/safe-json.ts);
 * - a query parameter is not given empty (`?after=`, which the number rules read as 0: 422), and
 *   `null` goes only in fields that take it (fastest-validator lets `null` through any optional
 *   field, and `{"displayName": null}` was stored as such: 422).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import ApiGateway from "moleculer-web";
import { ValidationFailedError } from "../lib/errors.ts";
import { forbiddenKeyPath, forbiddenQueryKey } from "../lib/safe-json.ts";
import {
  BadRequestError,
  CONTENT_ENCODINGS,
  InvalidContentEncodingError,
  UnsupportedContentEncodingError,
  UnsupportedMediaTypeError,
} from "./http-errors.ts";

type Req = IncomingMessage & { body?: unknown; originalUrl?: string };
type Next = (err?: unknown) => void;
export type Middleware = (req: Req, res: ServerResponse, next: Next) => void;

/** body-parser's json factory, as moleculer-web exports it. */
type JsonParserFactory = (options: {
  strict: boolean;
  limit: number;
  inflate: boolean;
  type: (req: IncomingMessage) => boolean;
}) => Middleware;
const { bodyParser } = ApiGateway as unknown as { bodyParser: { json: JsonParserFactory } };

/** Errors of body-parser and raw-body that error-mapping.ts maps by their `type`. */
const TYPED_ERRORS = new Set([
  "entity.parse.failed",
  "entity.too.large",
  "entity.verify.failed",
  "request.aborted",
  "request.size.invalid",
  "charset.unsupported",
]);

/** `application/json` and `application/<anything>+json`, with any parameters. */
export function isJsonType(contentType: string | undefined): boolean {
  const type = contentType?.split(";")[0]?.trim().toLowerCase() ?? "";
  return type === "application/json" || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type);
}

/** Whether the request carries body bytes (an empty body is no body). */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = Number(req.headers["content-length"] ?? 0);
  return Number.isFinite(length) && length > 0;
}

function encodingOf(req: IncomingMessage): string {
  return String(req.headers["content-encoding"] ?? "identity")
    .trim()
    .toLowerCase();
}

/** The JSON body parser: body-parser's, with every way a body can fail turned into a client error. */
export function jsonBodyParser(limitBytes: number): Middleware {
  const parse = bodyParser.json({
    strict: true,
    limit: limitBytes,
    inflate: true,
    type: (req) => isJsonType(req.headers["content-type"]),
  });
  return (req, res, next) => {
    const encoding = encodingOf(req);
    if (hasBody(req) && !(CONTENT_ENCODINGS as readonly string[]).includes(encoding)) {
      next(new UnsupportedContentEncodingError(encoding));
      return;
    }
    parse(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      const type = (err as { type?: unknown }).type;
      if (typeof type === "string" && TYPED_ERRORS.has(type)) return next(err);
      if (type === "encoding.unsupported") return next(new UnsupportedContentEncodingError(encoding));
      // Anything else comes from reading the stream: with a Content-Encoding, the decoder's error
      // (zlib's Z_DATA_ERROR, "unexpected end of file", a bad brotli block...).
      next(
        encoding === "identity"
          ? new BadRequestError("The body could not be read")
          : new InvalidContentEncodingError(encoding),
      );
    });
  };
}

/** After the parser: the type, shape and keys of what was sent. */
export function bodyAndQueryChecks(): Middleware {
  return (req, _res, next) => {
    if (hasBody(req) && !isJsonType(req.headers["content-type"])) {
      return next(new UnsupportedMediaTypeError(req.headers["content-type"]));
    }
    const body = req.body;
    if (body !== undefined && (typeof body !== "object" || body === null || Array.isArray(body))) {
      return next(
        new ValidationFailedError([{ field: "", type: "object", message: "The body must be a JSON object" }]),
      );
    }
    const url = req.originalUrl ?? req.url ?? "";
    const queryAt = url.indexOf("?");
    const search = queryAt === -1 ? "" : url.slice(queryAt + 1);
    const forbidden = forbiddenKeyPath(body) ?? forbiddenQueryKey(search);
    if (forbidden !== undefined) {
      return next(
        new ValidationFailedError([
          { field: forbidden, type: "unknownField", message: `Unknown field '${forbidden.slice(0, 64)}'` },
        ]),
      );
    }
    for (const [name, value] of new URLSearchParams(search)) {
      if (value !== "") continue;
      const field = name.slice(0, 64);
      return next(
        new ValidationFailedError([
          {
            field,
            type: "required",
            message: `The '${field}' query parameter is empty; give a value or leave it out`,
          },
        ]),
      );
    }
    next();
  };
}

/** The top-level fields of a params schema that are optional but do not take `null`. */
export function nonNullableFields(params: Record<string, unknown>): string[] {
  const props = (params.$$root === true ? params.props : params) as Record<string, unknown>;
  return Object.entries(props)
    .filter(([name, rule]) => !name.startsWith("$$") && typeof rule === "object" && rule !== null)
    .filter(([, rule]) => !(rule as { nullable?: boolean }).nullable)
    .map(([name]) => name);
}

/** Throws 422 when one of `fields` is null in the params an action is about to get. */
export function assertNoNulls(fields: readonly string[], params: Record<string, unknown>): void {
  const nulls = fields.filter((f) => params[f] === null);
  if (nulls.length === 0) return;
  throw new ValidationFailedError(
    nulls.map((field) => ({ field, type: "nullable", message: `The '${field}' field does not take null` })),
  );
}
