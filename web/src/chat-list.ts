/**
 * The chat list: the user's chats with their last message, unread and mention counts and a muted
 * marker, newest activity first, a page at a time (the next page loads when the end of the list
 * scrolls into view, or from its "Load more chats" button).
 *
 * Unread counts are kept as seqs, as the server computes them (last seq minus the seq read up to),
 * so a message counts once however it arrives (live, resumed, or in a refetched list that may be
 * older or newer than what came live). One's own messages are read as they are sent: they never
 * add to the count.
 */
import { ApiError } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../client/types.ts";
import { formatTime, h } from "./elements.ts";
import type { Platform } from "./platform.ts";
import type { Presence } from "./presence.ts";

/** After a page failed to load, the sentinel loads again by itself only this much later. */
const RETRY_AFTER_MS = 5_000;

interface Counts {
  last: number;
  read: number;
  /** Mentions of the user the server counted, all at or before `base`. */
  mentions: number;
  base: number;
  /** Seqs after `base` that mention the user (come live). */
  live: Set<number>;
}

export class ChatList {
  private readonly chats = new Map<string, ChatView>();
  private readonly seqs = new Map<string, Counts>();
  private readonly platform: Platform;
  private readonly me: string;
  private readonly presence: Presence;
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly more: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly onOpen: (chat: ChatView) => void;
  private readonly onChats: (chats: ChatView[]) => void;
  private readonly blocked: () => ReadonlySet<string>;
  private current: string | undefined;
  private renders = 0;
  private cursor: string | null = null;
  private paging: Promise<void> | undefined;
  /** Bumped when the list starts over: a page asked for before belongs to an older snapshot. */
  private generation = 0;
  private readonly observer: IntersectionObserver | undefined;
  /** When loading a page last failed (not for an expired cursor). */
  private failedAt = 0;

  constructor(options: {
    platform: Platform;
    me: string;
    presence: Presence;
    list: HTMLElement;
    empty: HTMLElement;
    more: HTMLButtonElement;
    status: HTMLElement;
    onOpen(chat: ChatView): void;
    /** Every chat a fetched page lists, before it is shown. */
    onChats(chats: ChatView[]): void;
    /** The users the caller blocks: a group's last message from one of them is not previewed. */
    blocked(): ReadonlySet<string>;
  }) {
    this.platform = options.platform;
    this.me = options.me;
    this.presence = options.presence;
    this.list = options.list;
    this.empty = options.empty;
    this.more = options.more;
    this.status = options.status;
    this.onOpen = options.onOpen;
    this.onChats = options.onChats;
    this.blocked = options.blocked;
    this.more.addEventListener("click", () => void this.loadMore());
    // The "Load more chats" button is the sentinel: scrolled into view, the next page loads.
    this.observer =
      typeof IntersectionObserver === "function"
        ? new IntersectionObserver((entries) => {
            if (entries.some((e) => e.isIntersecting) && Date.now() - this.failedAt > RETRY_AFTER_MS)
              void this.loadMore();
          })
        : undefined;
    this.observer?.observe(this.more);
  }

  get(id: string): ChatView | undefined {
    return this.chats.get(id);
  }

  all(): ChatView[] {
    return [...this.chats.values()];
  }

  /**
   * Fetches the first page (a new snapshot of the list). Its chats are merged in; chats of later
   * pages already listed stay, and paging goes on from the new snapshot's cursor (what is already
   * listed is not listed twice).
   */
  async refresh(): Promise<void> {
    const generation = ++this.generation;
    const page = await this.platform.chatPage();
    if (generation !== this.generation) return;
    this.onChats(page.chats);
    for (const chat of page.chats) this.chats.set(chat.id, this.merge(chat, this.chats.get(chat.id)));
    this.cursor = page.hasMore ? page.nextCursor : null;
    this.showMore();
    await this.render();
  }

  /** Fetches the next page, once at a time; chats already listed are not listed twice. */
  loadMore(): Promise<void> {
    if (this.paging || this.cursor === null) return this.paging ?? Promise.resolve();
    const cursor = this.cursor;
    const generation = this.generation;
    this.status.textContent = "Loading more chats…";
    this.paging = (async () => {
      try {
        const page = await this.platform.chatPage(cursor);
        if (generation !== this.generation) return;
        this.onChats(page.chats);
        for (const chat of page.chats)
          if (!this.chats.has(chat.id)) this.chats.set(chat.id, this.merge(chat, undefined));
        this.cursor = page.hasMore ? page.nextCursor : null;
        this.status.textContent = `${this.chats.size} chats shown`;
        await this.render();
      } catch (err) {
        // An expired cursor (it lives 30 minutes) starts over from a new first page. Another
        // failure does too, but the sentinel waits a while before trying again by itself.
        const expired = err instanceof ApiError && err.status === 422;
        if (!expired) this.failedAt = Date.now();
        this.status.textContent = expired ? "" : "Could not load more chats";
        if (generation === this.generation) this.cursor = null;
        void this.refresh().catch(() => undefined);
      } finally {
        this.paging = undefined;
        this.showMore();
      }
    })();
    return this.paging;
  }

  private showMore(): void {
    this.more.hidden = this.cursor === null;
    if (this.more.hidden || !this.observer) return;
    // Observed anew, the observer reports at once: a sentinel still in view after a page (a tall
    // window) loads the next one without waiting for a scroll.
    this.observer.unobserve(this.more);
    this.observer.observe(this.more);
  }

  upsert(chat: ChatView): void {
    this.chats.set(chat.id, this.merge(chat, this.chats.get(chat.id)));
    void this.render();
  }

  /** Takes what a chat answer says of the caller's mute (the rest of the chat is kept). */
  setMute(id: string, muted: boolean, mutedUntil: string | null): void {
    const chat = this.chats.get(id);
    if (!chat) return;
    this.chats.set(id, { ...chat, muted, mutedUntil });
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
    // One's own message moves one's read mark (the server does the same).
    if (m.chatId === this.current || m.senderId === this.me) this.advanceRead(seqs, m.seq);
    else if (m.mentions?.includes(this.me)) seqs.live.add(m.seq);
    void this.render();
    return true;
  }

  /** Someone's read mark moved (a `read` frame); only the user's own counts here. */
  onRead(chatId: string, userId: string, seq: number): void {
    if (userId === this.me) this.markRead(chatId, seq);
  }

  markRead(id: string, seq: number): void {
    const seqs = this.seqs.get(id);
    if (!seqs || seq <= seqs.read) return;
    this.advanceRead(seqs, seq);
    void this.render();
  }

  private advanceRead(seqs: Counts, seq: number): void {
    seqs.read = Math.max(seqs.read, seq);
    for (const s of seqs.live) if (s <= seqs.read) seqs.live.delete(s);
    if (seqs.read >= seqs.base) seqs.mentions = 0;
  }

  unreadOf(id: string): number {
    const seqs = this.seqs.get(id);
    return seqs ? Math.max(0, seqs.last - seqs.read) : 0;
  }

  mentionsOf(id: string): number {
    const seqs = this.seqs.get(id);
    return seqs ? seqs.mentions + seqs.live.size : 0;
  }

  private merge(fetched: ChatView, known: ChatView | undefined): ChatView {
    const last = fetched.lastMessage?.seq ?? 0;
    const seqs = this.seqs.get(fetched.id) ?? { last: 0, read: 0, mentions: 0, base: 0, live: new Set() };
    // An answer without counts (opening a chat) says nothing of them: what is known stays.
    const read =
      fetched.unreadCount === undefined
        ? this.seqs.has(fetched.id)
          ? seqs.read
          : last
        : Math.max(0, last - fetched.unreadCount);
    const newer = seqs.last > last;
    const next: Counts = {
      last: Math.max(seqs.last, last),
      read: Math.max(seqs.read, read),
      mentions: seqs.mentions,
      base: seqs.base,
      live: seqs.live,
    };
    if (fetched.mentionCount !== undefined && last >= seqs.base) {
      next.mentions = fetched.mentionCount;
      next.base = last;
      for (const s of next.live) if (s <= last) next.live.delete(s);
    }
    if (next.read >= next.base) next.mentions = 0;
    for (const s of next.live) if (s <= next.read) next.live.delete(s);
    this.seqs.set(fetched.id, next);
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
    const chats = this.all().sort(
      (a, b) => activity(b).localeCompare(activity(a)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    const titles = await Promise.all(chats.map((chat) => this.titleOf(chat)));
    if (run !== this.renders) return;
    this.empty.hidden = chats.length > 0;
    const focused = document.activeElement?.closest<HTMLElement>("#chat-list li")?.dataset.chatId;
    this.list.replaceChildren(...chats.map((chat, i) => this.item(chat, titles[i] ?? "")));
    if (focused)
      this.list.querySelector<HTMLElement>(`li[data-chat-id="${CSS.escape(focused)}"] button`)?.focus();
  }

  private previewOf(chat: ChatView): string {
    const last = chat.lastMessage;
    if (!last) return "No messages yet";
    if (last.deleted) return "Message deleted";
    if (chat.type === "group" && this.blocked().has(last.senderId)) return "Message from a blocked user";
    // A message of files only has no text.
    return last.message || "Attachment";
  }

  private item(chat: ChatView, title: string): HTMLElement {
    const unread = this.unreadOf(chat.id);
    const mentions = this.mentionsOf(chat.id);
    const muted = isMuted(chat);
    const partner = this.partnerOf(chat);
    const online = partner !== undefined && this.presence.isOnline(partner);
    const button = h(
      "button",
      {
        type: "button",
        class: muted ? "chat-item muted" : "chat-item",
        "aria-current": chat.id === this.current ? "true" : undefined,
      },
      h(
        "span",
        { class: "chat-name" },
        title,
        online ? h("span", { class: "online-dot" }, " (online)") : null,
        muted ? h("span", { class: "muted-marker", title: muteText(chat) }, " (muted)") : null,
      ),
      h("span", { class: "preview" }, this.previewOf(chat)),
      h(
        "span",
        { class: "counts" },
        mentions > 0
          ? h(
              "span",
              { class: "mentions", "aria-label": `${mentions} ${mentions === 1 ? "mention" : "mentions"}` },
              `@${mentions}`,
            )
          : null,
        unread > 0 ? h("span", { class: "unread", "aria-label": `${unread} unread` }, String(unread)) : null,
      ),
    );
    button.addEventListener("click", () => this.onOpen(chat));
    return h("li", { "data-chat-id": chat.id }, button);
  }
}

/** Whether the caller's mute is in force now (a mute whose time has passed reads as not muted). */
export function isMuted(chat: Pick<ChatView, "muted" | "mutedUntil">): boolean {
  if (!chat.muted) return false;
  return chat.mutedUntil === null || Date.parse(chat.mutedUntil) > Date.now();
}

/** "Muted", "Muted until 14:00", or "" when not muted. */
export function muteText(chat: Pick<ChatView, "muted" | "mutedUntil">): string {
  if (!isMuted(chat)) return "";
  return chat.mutedUntil ? `Muted until ${formatTime(chat.mutedUntil)}` : "Muted";
}

function activity(chat: ChatView): string {
  return chat.lastMessage?.createdAt ?? chat.createdAt;
}
