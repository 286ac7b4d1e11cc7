/**
 * The chat list's cursor: the snapshot time the first page fixed, the activity key of the last
 * chat given, and whose list it pages. It is opaque to clients and confers nothing (every page is
 * read among the caller's own chats); the checksum only tells a cursor the server made from one
 * that was altered or made up, which is refused instead of answering some other page.
 */
import { createHash } from "node:crypto";
import { ValidationFailedError } from "../../lib/errors.ts";

/** How long a cursor pages the snapshot it began; chats keep their activity history this long. */
export const CURSOR_LIFETIME_MS = 30 * 60_000;

export interface ChatCursor {
  /** The snapshot time (ms since the epoch). */
  at: number;
  /** The activity key of the last chat of the previous page: the next page starts below it. */
  below: string;
}

const VERSION = 1;

export function encodeChatCursor(userId: string, cursor: ChatCursor): string {
  const body = Buffer.from(JSON.stringify([VERSION, cursor.at, cursor.below]), "utf8").toString("base64url");
  return `${body}.${checksum(userId, body)}`;
}

/** The cursor, or a 422 naming `cursor`: `cursorExpired` past its lifetime, `cursor` otherwise. */
export function decodeChatCursor(userId: string, text: string, now = Date.now()): ChatCursor {
  const [body, sum, extra] = text.split(".");
  if (body === undefined || sum === undefined || extra !== undefined || checksum(userId, body) !== sum) {
    throw bad("cursor", "Invalid cursor: use the nextCursor of a previous answer");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    throw bad("cursor", "Invalid cursor: use the nextCursor of a previous answer");
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    parsed[0] !== VERSION ||
    !Number.isSafeInteger(parsed[1]) ||
    typeof parsed[2] !== "string"
  ) {
    throw bad("cursor", "Invalid cursor: use the nextCursor of a previous answer");
  }
  const at = parsed[1] as number;
  if (at > now + 60_000) throw bad("cursor", "Invalid cursor: use the nextCursor of a previous answer");
  if (now - at > CURSOR_LIFETIME_MS) {
    throw bad("cursorExpired", "The cursor has expired: list the chats again from the first page");
  }
  return { at, below: parsed[2] as string };
}

function checksum(userId: string, body: string): string {
  return createHash("sha256").update(`${userId}\u0000${body}`).digest("base64url").slice(0, 16);
}

function bad(type: string, message: string): ValidationFailedError {
  return new ValidationFailedError([{ field: "cursor", type, message }]);
}
