/**
 * The calls the page makes, through client/rest-client.ts (chats, messages, reactions, pins, muting,
 * blocking), typed by the wire types, and a cache of public profiles so members show by name.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { ChatPage, ChatView, MessagePage, PinView, PublicProfile } from "../../client/types.ts";

export const HISTORY_PAGE = 30;
/** Chats in one page of the chat list. */
export const CHAT_PAGE = 50;

export class Platform {
  readonly api: ApiClient;
  private readonly profiles = new Map<string, Promise<PublicProfile>>();

  constructor(api: ApiClient) {
    this.api = api;
  }

  /** One page of the chat list, newest activity first; `cursor` from the page before. */
  chatPage(cursor?: string): Promise<ChatPage> {
    return this.api.listChats({ limit: CHAT_PAGE, ...(cursor ? { cursor } : {}) });
  }

  chat(id: string): Promise<ChatView> {
    return this.api.chat(id);
  }

  openDirect(userId: string): Promise<ChatView> {
    return this.api.openDirect(userId);
  }

  openGroup(name: string, memberIds: string[]): Promise<ChatView> {
    return this.api.openGroup(name, memberIds);
  }

  /** The newest page, or the page before a seq; ascending by seq. */
  history(chatId: string, before?: number): Promise<MessagePage> {
    return this.api.history(chatId, { limit: HISTORY_PAGE, ...(before !== undefined ? { before } : {}) });
  }

  markRead(chatId: string, seq: number): Promise<void> {
    return this.api.markRead(chatId, seq);
  }

  react(chatId: string, messageId: string, emoji: string): Promise<void> {
    return this.api.react(chatId, messageId, emoji);
  }

  unreact(chatId: string, messageId: string, emoji: string): Promise<void> {
    return this.api.unreact(chatId, messageId, emoji);
  }

  pins(chatId: string): Promise<PinView[]> {
    return this.api.pins(chatId);
  }

  pin(chatId: string, messageId: string): Promise<void> {
    return this.api.pin(chatId, messageId);
  }

  unpin(chatId: string, messageId: string): Promise<void> {
    return this.api.unpin(chatId, messageId);
  }

  /** Mutes until a time, or always with null. */
  mute(chatId: string, until: Date | null): Promise<void> {
    return this.api.mute(chatId, until);
  }

  unmute(chatId: string): Promise<void> {
    return this.api.unmute(chatId);
  }

  blocks(): Promise<PublicProfile[]> {
    return this.api.blocks();
  }

  block(userId: string): Promise<void> {
    return this.api.block(userId);
  }

  unblock(userId: string): Promise<void> {
    return this.api.unblock(userId);
  }

  profile(id: string): Promise<PublicProfile> {
    let cached = this.profiles.get(id);
    if (!cached) {
      cached = this.api.user(id);
      cached.catch(() => this.profiles.delete(id));
      this.profiles.set(id, cached);
    }
    return cached;
  }

  remember(profile: PublicProfile): void {
    this.profiles.set(profile.id, Promise.resolve(profile));
  }

  /** A user's display name, or a placeholder while it cannot be fetched. */
  async nameOf(id: string): Promise<string> {
    try {
      return (await this.profile(id)).displayName;
    } catch {
      return "Unknown user";
    }
  }
}
