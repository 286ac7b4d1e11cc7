/**
 * The calls the page makes beyond what client/rest-client.ts wraps (chats and messages), typed by
 * the contracts, and a cache of public profiles so members show by name.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView, PublicProfile } from "../../lib/contracts.ts";

export const HISTORY_PAGE = 30;

export class Platform {
  readonly api: ApiClient;
  private readonly profiles = new Map<string, Promise<PublicProfile>>();

  constructor(api: ApiClient) {
    this.api = api;
  }

  async chats(): Promise<ChatView[]> {
    return (await this.api.request<{ chats: ChatView[] }>("GET", "/chats")).chats;
  }

  chat(id: string): Promise<ChatView> {
    return this.api.request("GET", `/chats/${encodeURIComponent(id)}`);
  }

  openDirect(userId: string): Promise<ChatView> {
    return this.api.request("POST", "/chats", { type: "direct", userId });
  }

  openGroup(name: string, memberIds: string[]): Promise<ChatView> {
    return this.api.request("POST", "/chats", { type: "group", name, memberIds });
  }

  /** The newest page, or the page before a seq; ascending by seq. */
  history(chatId: string, before?: number): Promise<{ messages: MessageView[]; hasMore: boolean }> {
    const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (before !== undefined) query.set("before", String(before));
    return this.api.request("GET", `/chats/${encodeURIComponent(chatId)}/messages?${query}`);
  }

  markRead(chatId: string, seq: number): Promise<void> {
    return this.api.request("POST", `/chats/${encodeURIComponent(chatId)}/read`, { seq });
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
