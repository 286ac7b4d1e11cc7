/**
 * The chat list: every chat of the user with its last message and unread count, newest first.
 * Counts start from the server's `unreadCount` and follow the live messages; a message counts
 * once, by seq, however often it arrives (live, resumed or refetched).
 */
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { h } from "./elements.ts";
import type { Platform } from "./platform.ts";
import type { Presence } from "./presence.ts";

export class ChatList {
  private readonly chats = new Map<string, ChatView>();
  private readonly platform: Platform;
  private readonly me: string;
  private readonly presence: Presence;
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly onOpen: (chat: ChatView) => void;
  private current: string | undefined;
  private renders = 0;

  constructor(options: {
    platform: Platform;
    me: string;
    presence: Presence;
    list: HTMLElement;
    empty: HTMLElement;
    onOpen(chat: ChatView): void;
  }) {
    this.platform = options.platform;
    this.me = options.me;
    this.presence = options.presence;
    this.list = options.list;
    this.empty = options.empty;
    this.onOpen = options.onOpen;
  }

  get(id: string): ChatView | undefined {
    return this.chats.get(id);
  }

  all(): ChatView[] {
    return [...this.chats.values()];
  }

  /** Replaces the list with what the server answered. */
  set(chats: ChatView[]): void {
    this.chats.clear();
    // The chat on screen is read as its messages come, whatever count the answer was computed with.
    for (const chat of chats)
      this.chats.set(chat.id, chat.id === this.current ? { ...chat, unreadCount: 0 } : chat);
    void this.render();
  }

  upsert(chat: ChatView): void {
    const known = this.chats.get(chat.id);
    this.chats.set(chat.id, { ...chat, unreadCount: known?.unreadCount ?? chat.unreadCount ?? 0 });
    void this.render();
  }

  /** Marks which chat is on screen: its messages are read as they come. */
  select(id: string | undefined): void {
    this.current = id;
    void this.render();
  }

  /** Follows a live message; answers false for a chat the list does not know yet. */
  onMessage(m: MessageView, viewing: boolean): boolean {
    const chat = this.chats.get(m.chatId);
    if (!chat) return false;
    if (m.seq <= (chat.lastMessage?.seq ?? 0)) return true;
    chat.lastMessage = {
      id: m.id,
      seq: m.seq,
      senderId: m.senderId,
      message: m.message,
      createdAt: m.createdAt,
    };
    if (!viewing && m.senderId !== this.me) chat.unreadCount = (chat.unreadCount ?? 0) + 1;
    void this.render();
    return true;
  }

  markRead(id: string): void {
    const chat = this.chats.get(id);
    if (!chat?.unreadCount) return;
    chat.unreadCount = 0;
    void this.render();
  }

  /** The name a chat is shown by: a group's name, or the other member of a direct chat. */
  async titleOf(chat: ChatView): Promise<string> {
    if (chat.type === "group") return chat.name ?? "Group";
    return this.platform.nameOf(this.partnerOf(chat) ?? this.me);
  }

  partnerOf(chat: ChatView): string | undefined {
    return chat.type === "direct" ? chat.members.find((id) => id !== this.me) : undefined;
  }

  async render(): Promise<void> {
    const run = ++this.renders;
    const chats = this.all().sort((a, b) => activity(b).localeCompare(activity(a)));
    const titles = await Promise.all(chats.map((chat) => this.titleOf(chat)));
    if (run !== this.renders) return;
    this.empty.hidden = chats.length > 0;
    this.list.replaceChildren(...chats.map((chat, i) => this.item(chat, titles[i] ?? "")));
  }

  private item(chat: ChatView, title: string): HTMLElement {
    const unread = chat.unreadCount ?? 0;
    const partner = this.partnerOf(chat);
    const online = partner !== undefined && this.presence.isOnline(partner);
    const last = chat.lastMessage;
    const button = h(
      "button",
      { type: "button", class: "chat-item", "aria-current": chat.id === this.current ? "true" : undefined },
      h(
        "span",
        { class: "chat-name" },
        title,
        online ? h("span", { class: "online-dot" }, " (online)") : null,
      ),
      h(
        "span",
        { class: "preview" },
        last ? (last.deleted ? "Message deleted" : last.message) : "No messages yet",
      ),
      unread > 0 ? h("span", { class: "unread", "aria-label": `${unread} unread` }, String(unread)) : null,
    );
    button.addEventListener("click", () => this.onOpen(chat));
    return h("li", { "data-chat-id": chat.id }, button);
  }
}

function activity(chat: ChatView): string {
  return chat.lastMessage?.createdAt ?? chat.createdAt;
}
