/**
 * The open chat: its history with scroll-back, live messages in seq order, the composer with its
 * pending (not yet acknowledged) messages, typing and presence.
 */
import type { ChatSocket } from "../../client/chat-socket.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import type { ChatList } from "./chat-list.ts";
import { formatTime, h } from "./elements.ts";
import { showError } from "./errors.ts";
import type { Platform } from "./platform.ts";
import type { Presence } from "./presence.ts";
import { Typing } from "./typing.ts";

/** Scrolled this close to an edge counts as at it. */
const EDGE_PX = 48;

export interface ConversationElements {
  view: HTMLElement;
  title: HTMLElement;
  presence: HTMLElement;
  log: HTMLElement;
  messages: HTMLOListElement;
  loadOlder: HTMLButtonElement;
  typing: HTMLElement;
  error: HTMLElement;
  composer: HTMLFormElement;
  text: HTMLTextAreaElement;
}

export class Conversation {
  chat: ChatView | undefined;
  private readonly e: ConversationElements;
  private readonly platform: Platform;
  private readonly socket: ChatSocket;
  private readonly list: ChatList;
  private readonly presence: Presence;
  private readonly me: string;
  private readonly typing: Typing;
  private hasMore = false;
  private loading = false;
  private readSeq = 0;
  private opened = 0;

  constructor(o: {
    elements: ConversationElements;
    platform: Platform;
    socket: ChatSocket;
    list: ChatList;
    presence: Presence;
    me: string;
  }) {
    this.e = o.elements;
    this.platform = o.platform;
    this.socket = o.socket;
    this.list = o.list;
    this.presence = o.presence;
    this.me = o.me;
    this.typing = new Typing(o.elements.typing, (id) => this.platform.nameOf(id));
    this.e.loadOlder.addEventListener("click", () => void this.loadOlder());
    this.e.log.addEventListener("scroll", () => {
      if (this.e.log.scrollTop < EDGE_PX && this.hasMore) void this.loadOlder();
    });
    this.e.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendDraft();
    });
    this.e.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendDraft();
      }
    });
    this.e.text.addEventListener("input", () => {
      if (this.chat && this.e.text.value.trim()) this.typing.announce(() => this.socket.typing(this.chatId));
    });
  }

  private get chatId(): string {
    return this.chat?.id ?? "";
  }

  async open(chat: ChatView): Promise<void> {
    const run = ++this.opened;
    this.chat = chat;
    this.readSeq = 0;
    this.hasMore = false;
    this.typing.clear();
    this.e.messages.replaceChildren();
    this.e.view.hidden = false;
    showError(this.e.error, "");
    this.e.title.textContent = await this.list.titleOf(chat);
    this.showPresence();
    this.e.text.focus();
    try {
      const page = await this.platform.history(chat.id);
      if (run !== this.opened) return;
      for (const m of page.messages) this.insert(m);
      this.hasMore = page.hasMore;
      this.e.loadOlder.hidden = !page.hasMore;
      const last = page.messages.at(-1);
      if (last) this.socket.track(chat.id, last.seq);
      this.scrollToEnd();
      this.markRead();
    } catch (err) {
      showError(this.e.error, err);
    }
  }

  close(): void {
    this.opened++;
    this.chat = undefined;
    this.typing.clear();
    this.e.view.hidden = true;
  }

  onMessage(m: MessageView): void {
    if (m.chatId !== this.chat?.id) return;
    const follow = this.atEnd() || m.senderId === this.me;
    this.typing.stopped(m.senderId);
    this.insert(m);
    if (follow) this.scrollToEnd();
    this.markRead();
  }

  onTyping(chatId: string, userId: string): void {
    if (chatId === this.chat?.id && userId !== this.me) this.typing.started(userId);
  }

  showPresence(): void {
    const chat = this.chat;
    if (!chat) return;
    const partner = this.list.partnerOf(chat);
    if (partner) {
      this.e.presence.textContent = this.presence.describe(partner);
      return;
    }
    const online = chat.members.filter((id) => id !== this.me && this.presence.isOnline(id)).length;
    this.e.presence.textContent = `${chat.members.length} members, ${online} of the others online`;
  }

  private async loadOlder(): Promise<void> {
    const chat = this.chat;
    const first = this.e.messages.querySelector<HTMLElement>("li[data-seq]");
    if (!chat || this.loading || !first) return;
    this.loading = true;
    const run = this.opened;
    try {
      const page = await this.platform.history(chat.id, Number(first.dataset.seq));
      if (run !== this.opened) return;
      const fromEnd = this.e.log.scrollHeight - this.e.log.scrollTop;
      for (const m of page.messages) this.insert(m);
      this.e.log.scrollTop = this.e.log.scrollHeight - fromEnd;
      this.hasMore = page.hasMore;
      this.e.loadOlder.hidden = !page.hasMore;
    } catch (err) {
      showError(this.e.error, err);
    } finally {
      this.loading = false;
    }
  }

  private sendDraft(): void {
    const text = this.e.text.value.trim();
    const chat = this.chat;
    if (!text || !chat) return;
    this.e.text.value = "";
    const clientMsgId = crypto.randomUUID();
    const pending = this.element(
      { senderId: this.me, message: text, createdAt: new Date().toISOString() },
      "Sending…",
    );
    pending.dataset.clientMsgId = clientMsgId;
    this.e.messages.append(pending);
    this.scrollToEnd();
    this.socket.send({ chatId: chat.id }, text, clientMsgId).then(
      () => pending.querySelector(".state")?.replaceChildren(),
      (err: Error) => {
        pending.classList.add("failed");
        pending.querySelector(".state")?.replaceChildren(`Not sent: ${err.message}`);
      },
    );
  }

  /** Puts a message in seq order; one already shown (by seq, or pending by clientMsgId) is replaced. */
  private insert(m: MessageView): void {
    const list = this.e.messages;
    const el = this.element(m, "");
    el.dataset.seq = String(m.seq);
    const existing = list.querySelector(`li[data-seq="${m.seq}"]`);
    if (existing) {
      existing.replaceWith(el);
      return;
    }
    if (m.senderId === this.me) {
      for (const p of list.querySelectorAll<HTMLElement>("li[data-client-msg-id]"))
        if (p.dataset.clientMsgId === m.clientMsgId) p.remove();
    }
    const later = [...list.querySelectorAll<HTMLElement>("li[data-seq]")].find(
      (li) => Number(li.dataset.seq) > m.seq,
    );
    list.insertBefore(el, later ?? list.querySelector("li[data-client-msg-id]"));
  }

  private element(m: Pick<MessageView, "senderId" | "message" | "createdAt" | "deleted">, state: string) {
    const mine = m.senderId === this.me;
    const sender = h("span", { class: "sender" }, mine ? "You" : "…");
    if (!mine) void this.platform.nameOf(m.senderId).then((name) => sender.replaceChildren(name));
    return h(
      "li",
      { class: mine ? "msg mine" : "msg" },
      h(
        "p",
        { class: "meta" },
        sender,
        " ",
        h("time", { datetime: m.createdAt }, formatTime(m.createdAt)),
        " ",
        h("span", { class: "state" }, state),
      ),
      h("p", { class: m.deleted ? "text deleted" : "text" }, m.deleted ? "Message deleted" : m.message),
    );
  }

  private markRead(): void {
    const chat = this.chat;
    const last = this.e.messages.querySelectorAll<HTMLElement>("li[data-seq]");
    const seq = Number(last[last.length - 1]?.dataset.seq ?? 0);
    if (!chat || seq <= this.readSeq) return;
    this.readSeq = seq;
    this.list.markRead(chat.id, seq);
    this.platform.markRead(chat.id, seq).catch(() => {
      this.readSeq = 0;
    });
  }

  private atEnd(): boolean {
    const log = this.e.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < EDGE_PX;
  }

  private scrollToEnd(): void {
    this.e.log.scrollTop = this.e.log.scrollHeight;
  }
}
