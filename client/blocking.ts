/**
 * Messages from blocked senders. In groups the server still delivers them (blocking only stops
 * direct chats, typing and presence), so the SDK marks them and a client decides how to fold them.
 */
import type { ClientMessage, MessageView } from "./types.ts";

/** The ids a caller blocks, as the helpers below take them (an array, a Set, `blocks()` mapped). */
export type BlockedIds = Iterable<string>;

/**
 * The message with `blockedSender: true` when its sender is blocked; otherwise as it came, without
 * the mark (a message marked before its sender was unblocked loses it).
 */
export function markBlockedSender<M extends MessageView>(
  message: M,
  blocked: ReadonlySet<string>,
): M & ClientMessage {
  if (blocked.has(message.senderId)) return { ...message, blockedSender: true };
  if (!(message as ClientMessage).blockedSender) return message;
  const { blockedSender: _, ...rest } = message as M & ClientMessage;
  return rest as M;
}

/** Every message marked as markBlockedSender does; the array is new, unmarked messages are the same objects. */
export function markBlockedSenders<M extends MessageView>(
  messages: readonly M[],
  blockedIds: BlockedIds,
): (M & ClientMessage)[] {
  const blocked = toSet(blockedIds);
  return messages.map((m) => markBlockedSender(m, blocked));
}

function toSet(ids: BlockedIds): ReadonlySet<string> {
  return ids instanceof Set ? ids : new Set(ids);
}
