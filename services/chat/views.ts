/** The views of stored chats and messages that actions answer and frames carry. */
import type { ChatView, MessageSummary, MessageView, ReplyRef } from "../../lib/contracts.ts";
import type { Chat, LastMessage } from "./chats.repo.ts";
import type { Message } from "./messages.repo.ts";
import { mentionCountOf, muteOf, type Receipt } from "./receipts.repo.ts";

/** Characters (code points) of the original a reply shows. */
export const REPLY_PREVIEW_LENGTH = 200;

export function toLast(m: Message): LastMessage {
  const last: LastMessage = {
    id: m._id,
    seq: m.seq,
    senderId: m.senderId,
    message: m.message,
    createdAt: m.createdAt,
  };
  if (m.deleted) last.deleted = true;
  return last;
}

/**
 * A message as clients see it; a reply shows its original as it is now (`original`: null when it
 * is gone, which counts as deleted).
 */
export function toMessageView(m: Message, original?: Message | null): MessageView {
  const view: MessageView = {
    id: m._id,
    chatId: m.chatId,
    seq: m.seq,
    senderId: m.senderId,
    message: m.message,
    clientMsgId: m.clientMsgId,
    createdAt: m.createdAt.toISOString(),
    reactions: m.deleted
      ? []
      : (m.reactions ?? []).map((r) => ({ emoji: r.emoji, count: r.count, userIds: [...r.userIds] })),
    mentions: m.deleted ? [] : [...(m.mentions ?? [])],
    attachments: m.deleted ? [] : (m.attachments ?? []).map((a) => ({ ...a })),
  };
  if (m.editedAt) view.editedAt = m.editedAt.toISOString();
  if (m.deleted) view.deleted = true;
  if (m.replyTo) view.replyTo = replyRef(m.replyTo, original ?? null);
  return view;
}

function replyRef(ref: NonNullable<Message["replyTo"]>, original: Message | null): ReplyRef {
  const deleted = !original || original.deleted === true;
  return {
    id: ref.id,
    seq: ref.seq,
    senderId: ref.senderId,
    preview: deleted ? "" : previewOf(original.message),
    deleted,
  };
}

export function previewOf(text: string): string {
  let out = "";
  let n = 0;
  for (const ch of text) {
    if (n++ >= REPLY_PREVIEW_LENGTH) break;
    out += ch;
  }
  return out;
}

/** The views of messages, their replies' originals read in one lookup. */
export async function toMessageViews(
  messages: Message[],
  byIds: (ids: string[]) => Promise<(Message | null)[]>,
): Promise<MessageView[]> {
  const wanted = [...new Set(messages.flatMap((m) => (m.replyTo ? [m.replyTo.id] : [])))];
  const originals = new Map<string, Message | null>();
  if (wanted.length > 0) {
    const found = await byIds(wanted);
    wanted.forEach((id, i) => {
      originals.set(id, found[i] ?? null);
    });
  }
  return messages.map((m) => toMessageView(m, m.replyTo ? originals.get(m.replyTo.id) : undefined));
}

/**
 * A chat as one member sees it: their mute always, their unread and mention counts when
 * `counts` (the chat list and `GET /chats/:id`).
 */
export function toChatView(c: Chat, own?: { receipt: Receipt | undefined; counts: boolean }): ChatView {
  const last = c.lastMessage;
  const view: ChatView = {
    id: c._id,
    type: c.type,
    name: c.name,
    ownerId: c.ownerId,
    members: c.members,
    lastMessage: last
      ? ({
          id: last.id,
          seq: last.seq,
          senderId: last.senderId,
          message: last.message,
          createdAt: new Date(last.createdAt).toISOString(),
          ...(last.deleted ? { deleted: true } : {}),
        } satisfies MessageSummary)
      : null,
    ...muteOf(own?.receipt),
    createdAt: c.createdAt.toISOString(),
  };
  if (own?.counts) {
    view.unreadCount = Math.max(0, c.lastSeq - (own.receipt?.lastReadSeq ?? 0));
    view.mentionCount = mentionCountOf(own.receipt);
  }
  return view;
}
