/** The views of stored chats and messages that actions answer and frames carry. */
import type { ChatView, MessageSummary, MessageView } from "../../lib/contracts.ts";
import type { Chat, LastMessage } from "./chats.repo.ts";
import type { Message } from "./messages.repo.ts";

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

export function toMessageView(m: Message): MessageView {
  const view: MessageView = {
    id: m._id,
    chatId: m.chatId,
    seq: m.seq,
    senderId: m.senderId,
    message: m.message,
    clientMsgId: m.clientMsgId,
    createdAt: m.createdAt.toISOString(),
  };
  if (m.editedAt) view.editedAt = m.editedAt.toISOString();
  if (m.deleted) view.deleted = true;
  return view;
}

export function toChatView(c: Chat): ChatView {
  const last = c.lastMessage;
  return {
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
    createdAt: c.createdAt.toISOString(),
  };
}
