/**
 * Client frames of the WebSocket protocol (api.md, "Client to server"), parsed and checked before
 * anything else sees them. A frame that fails answers an `error` frame naming what it refers to.
 */
import { forbiddenKeyPath } from "../lib/safe-json.ts";

export type ClientFrame =
  | {
      type: "send_message";
      chatId?: string;
      recipientId?: string;
      message: string;
      clientMsgId: string;
      replyTo?: string;
      attachmentIds?: string[];
    }
  | { type: "resume"; chats: Record<string, number> }
  | { type: "typing"; chatId: string }
  | { type: "read"; chatId: string; seq: number }
  | { type: "auth"; token: string };

export class FrameError extends Error {
  readonly code: string;
  readonly ref: string | undefined;
  constructor(code: string, message: string, ref?: string) {
    super(message);
    this.name = "FrameError";
    this.code = code;
    this.ref = ref;
  }
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const CLIENT_MSG_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_RESUME_CHATS = 1_000;
const MAX_ATTACHMENTS = 10;

export function parseFrame(text: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError("INVALID_JSON", "The frame is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FrameError("INVALID_FRAME", "A frame is a JSON object");
  }
  const f = value as Record<string, unknown>;
  const type = typeof f.type === "string" ? f.type : undefined;
  const forbidden = forbiddenKeyPath(value);
  if (forbidden !== undefined) {
    const ref = typeof f.clientMsgId === "string" ? f.clientMsgId : type;
    throw new FrameError("INVALID_FRAME", `Unknown field '${forbidden.slice(0, 64)}'`, ref);
  }
  switch (type) {
    case "send_message":
      return sendMessage(f);
    case "resume":
      return resume(f);
    case "typing":
      only(f, ["type", "chatId"], type);
      return { type, chatId: id(f.chatId, "chatId", type) };
    case "read":
      only(f, ["type", "chatId", "seq"], type);
      return { type, chatId: id(f.chatId, "chatId", type), seq: seq(f.seq, "seq", type) };
    case "auth":
      only(f, ["type", "token"], type);
      if (typeof f.token !== "string" || f.token.length === 0 || f.token.length > 4096) {
        throw invalid("token", type);
      }
      return { type, token: f.token };
    default:
      throw new FrameError("UNKNOWN_TYPE", `Unknown frame type ${JSON.stringify(type ?? null)}`, type);
  }
}

function sendMessage(f: Record<string, unknown>): ClientFrame {
  const ref = typeof f.clientMsgId === "string" ? f.clientMsgId : "send_message";
  only(f, ["type", "chatId", "recipientId", "message", "clientMsgId", "replyTo", "attachmentIds"], ref);
  if (typeof f.clientMsgId !== "string" || !CLIENT_MSG_ID.test(f.clientMsgId))
    throw invalid("clientMsgId", ref);
  if ((f.chatId === undefined) === (f.recipientId === undefined)) {
    throw new FrameError("INVALID_FRAME", "Give chatId or recipientId, not both", ref);
  }
  const attachmentIds =
    f.attachmentIds === undefined ? undefined : ids(f.attachmentIds, "attachmentIds", ref);
  // A message that holds files may have no text; whether it does is the chat service's to check.
  if (typeof f.message !== "string" || (f.message.length === 0 && !attachmentIds))
    throw invalid("message", ref);
  const frame: ClientFrame = { type: "send_message", message: f.message, clientMsgId: f.clientMsgId };
  if (attachmentIds) frame.attachmentIds = attachmentIds;
  if (f.chatId !== undefined) frame.chatId = id(f.chatId, "chatId", ref);
  else frame.recipientId = id(f.recipientId, "recipientId", ref);
  if (f.replyTo !== undefined) frame.replyTo = id(f.replyTo, "replyTo", ref);
  return frame;
}

function resume(f: Record<string, unknown>): ClientFrame {
  only(f, ["type", "chats"], "resume");
  const chats = f.chats;
  if (typeof chats !== "object" || chats === null || Array.isArray(chats)) throw invalid("chats", "resume");
  const entries = Object.entries(chats);
  if (entries.length > MAX_RESUME_CHATS) throw invalid("chats", "resume");
  const out: Record<string, number> = {};
  for (const [chatId, last] of entries) {
    if (!ID.test(chatId) || typeof last !== "number" || !Number.isSafeInteger(last) || last < 0) {
      throw invalid(`chats.${chatId.slice(0, 64)}`, "resume");
    }
    out[chatId] = last;
  }
  return { type: "resume", chats: out };
}

function only(f: Record<string, unknown>, keys: string[], ref: string): void {
  const extra = Object.keys(f).find((k) => !keys.includes(k));
  if (extra !== undefined)
    throw new FrameError("INVALID_FRAME", `Unknown field '${extra.slice(0, 64)}'`, ref);
}

function id(value: unknown, field: string, ref: string): string {
  if (typeof value !== "string" || !ID.test(value)) throw invalid(field, ref);
  return value;
}

function ids(value: unknown, field: string, ref: string): string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_ATTACHMENTS) throw invalid(field, ref);
  return value.map((v) => id(v, field, ref));
}

function seq(value: unknown, field: string, ref: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) throw invalid(field, ref);
  return value;
}

function invalid(field: string, ref: string): FrameError {
  return new FrameError("INVALID_FRAME", `Missing or invalid '${field}'`, ref);
}
