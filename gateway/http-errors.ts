/**
 * The client errors that only the HTTP edge raises (what reaches a service is already JSON of the
 * right shape). Each carries its UPPER_SNAKE type, which error-mapping.ts turns into `error.code`.
 */
import { Errors } from "moleculer";

const { MoleculerClientError } = Errors;

/** The encodings body-parser decodes (zstd where this Node has it). */
export const CONTENT_ENCODINGS = ["identity", "gzip", "deflate", "br", "zstd"] as const;

export class MethodNotAllowedError extends MoleculerClientError {
  constructor(method: string, allow: string[]) {
    super(
      `${printable(method)} is not allowed here; this path takes ${allow.join(", ")}`,
      405,
      "METHOD_NOT_ALLOWED",
      { allow },
    );
  }
}

export class UnsupportedMediaTypeError extends MoleculerClientError {
  constructor(contentType: string | undefined) {
    const sent = contentType ? `Content-Type '${printable(contentType)}'` : "no Content-Type";
    super(`A request body must be JSON sent as application/json; got ${sent}`, 415, "UNSUPPORTED_MEDIA_TYPE");
  }
}

export class UnsupportedContentEncodingError extends MoleculerClientError {
  constructor(encoding: string) {
    super(
      `Content-Encoding '${printable(encoding)}' is not supported; send ${CONTENT_ENCODINGS.join(", ")}`,
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
  }
}

/** A body whose Content-Encoding says gzip (deflate, br, zstd) but whose bytes do not decode as that. */
export class InvalidContentEncodingError extends MoleculerClientError {
  constructor(encoding: string) {
    super(
      `The body does not decode as Content-Encoding '${printable(encoding)}'`,
      400,
      "INVALID_CONTENT_ENCODING",
    );
  }
}

export class BadRequestError extends MoleculerClientError {
  constructor(message: string) {
    super(message, 400, "BAD_REQUEST");
  }
}

/** A header value as it may be quoted back: printable ASCII, at most 64 characters. */
function printable(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 64 ? `${clean.slice(0, 64)}...` : clean;
}
