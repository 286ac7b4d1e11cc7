/**
 * The chat list: every chat of the user with its last message and unread count, newest first.
 * Unread counts are kept as seqs, as the server computes them (last seq minus the seq read up to),
 * so a message counts once however it arrives (live, resumed, or in a refetched list that may be
 * older or newer than what came live).
 */
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { h } from "./elements.ts";
import type { Platform } from "./platform.ts";
import type { Presence } from "./presence.ts";

export class ChatList {
  private readonly chats = new Map<string, ChatView>();
  private readonly seqs = new Map<string, { last: number; read: number }>();
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

  /** Takes the server's list: its chats, merged with what this page has seen since. */
  set(chats: ChatView[]): void {
    const known = new Map(this.chats);
    this.chats.clear();
    for (const chat of chats) this.chats.set(chat.id, this.merge(chat, known.get(chat.id)));
    for (const id of this.seqs.keys()) if (!this.chats.has(id)) this.seqs.delete(id);
    void this.render();
  }

  upsert(chat: ChatView): void {
    this.chats.set(chat.id, this.merge(chat, this.chats.get(chat.id)));
    void this.render();
  }

  /** Marks which chat is on screen: its messages are read as they come. */
  select(id: string | undefined): void {
    this.current = id;
    void this.render();
  }

  /** Follows a live message; answers false for a chat the list does not know yet. */
  onMessage(m: MessageView): boolean {
    const chat = this.chats.get(m.chatId);
    const seqs = this.seqs.get(m.chatId);
    if (!chat || !seqs) return false;
    if (m.seq <= seqs.last) return true;
    seqs.last = m.seq;
    chat.lastMessage = {
      id: m.id,
      seq: m.seq,
      senderId: m.senderId,
      message: m.message,
      createdAt: m.createdAt,
    };
    if (m.chatId === this.current) seqs.read = m.seq;
    void this.render();
    return true;
  }

  markRead(id: string, seq: number): void {
    const seqs = this.seqs.get(id);
    if (!seqs || seq <= seqs.read) return;
    seqs.read = seq;
    void this.render();
  }

  unreadOf(id: string): number {
    const seqs = this.seqs.get(id);
    return seqs ? Math.max(0, seqs.last - seqs.read) : 0;
  }

  private merge(fetched: ChatView, known: ChatView | undefined): ChatView {
    const last = fetched.lastMessage?.seq ?? 0;
    const read = Math.max(0, last - (fetched.unreadCount ?? 0));
    const seqs = this.seqs.get(fetched.id) ?? { last: 0, read: 0 };
    const newer = seqs.last > last;
    this.seqs.set(fetched.id, { last: Math.max(seqs.last, last), read: Math.max(seqs.read, read) });
    return newer && known ? { ...fetched, lastMessage: known.lastMessage } : fetched;
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
    const unread = this.unreadOf(chat.id);
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
