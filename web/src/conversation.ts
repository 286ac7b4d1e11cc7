/**
 * The open chat: its history with scroll-back, live messages in seq order, the composer with its
 * pending (not yet acknowledged) messages, the message it answers and the files it carries
 * (attachments.ts), typing and presence, and per message: replies (with a jump to the original),
 * attachments, reactions, mentions, pins, and messages from blocked users folded.
 */
import { markBlockedSender, markBlockedSenders } from "../../client/blocking.ts";
import type { ChatSocket } from "../../client/chat-socket.ts";
import type {
  ChatView,
  ClientMessage,
  MessageView,
  PinsChangedFrame,
  PinView,
  ReactionFrame,
  ReactionView,
  ReplyRef,
} from "../../client/types.ts";
import { AttachmentTray, attachmentList } from "./attachments.ts";
import type { ChatList } from "./chat-list.ts";
import { isMuted, muteText } from "./chat-list.ts";
import { formatTime, h } from "./elements.ts";
import { errorText, showError } from "./errors.ts";
import type { Platform } from "./platform.ts";
import type { Presence } from "./presence.ts";
import { Typing } from "./typing.ts";

/** Scrolled this close to an edge counts as at it. */
const EDGE_PX = 48;
/** The emoji the picker offers. */
export const PICKER_EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🎉"];
/** A jumped-to message stays highlighted this long. */
const HIGHLIGHT_MS = 2_500;
/** `@username` as the server finds mentions. */
const MENTION = /(?<![A-Za-z0-9_])@([A-Za-z0-9_]{3,32})(?![A-Za-z0-9_])/g;

export interface ConversationElements {
  view: HTMLElement;
  title: HTMLElement;
  presence: HTMLElement;
  partnerProfile: HTMLButtonElement;
  muteMenu: HTMLDetailsElement;
  muteState: HTMLElement;
  pinsPanel: HTMLDetailsElement;
  pinsCount: HTMLElement;
  pinsList: HTMLElement;
  log: HTMLElement;
  messages: HTMLOListElement;
  loadOlder: HTMLButtonElement;
  typing: HTMLElement;
  error: HTMLElement;
  announce: HTMLElement;
  replyBar: HTMLElement;
  replyText: HTMLElement;
  cancelReply: HTMLButtonElement;
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
  private readonly blocked: () => ReadonlySet<string>;
  private readonly onProfile: (userId: string) => void;
  private readonly typing: Typing;
  private readonly files: AttachmentTray;
  /** Send was asked for while files were uploading: the draft goes once they are done. */
  private sendWhenUploaded = false;
  /** The shown messages by id, as they are now (reactions applied). */
  private readonly messages = new Map<string, ClientMessage>();
  /** Folded messages of blocked users the user chose to see. */
  private readonly revealed = new Set<string>();
  private pinned = new Set<string>();
  private replyingTo: ReplyRef | undefined;
  private hasMore = false;
  private older: Promise<void> | undefined;
  private readSeq = 0;
  private opened = 0;
  private pinsRun = 0;

  constructor(o: {
    elements: ConversationElements;
    platform: Platform;
    socket: ChatSocket;
    list: ChatList;
    presence: Presence;
    me: string;
    /** The users the caller blocks. */
    blocked(): ReadonlySet<string>;
    /** Shows another user's profile. */
    onProfile(userId: string): void;
  }) {
    this.e = o.elements;
    this.platform = o.platform;
    this.socket = o.socket;
    this.list = o.list;
    this.presence = o.presence;
    this.me = o.me;
    this.blocked = o.blocked;
    this.onProfile = o.onProfile;
    this.typing = new Typing(o.elements.typing, (id) => this.platform.nameOf(id));
    this.files = new AttachmentTray({
      api: this.platform.api,
      composer: this.e.composer,
      text: this.e.text,
      dropZone: this.e.view,
      error: this.e.error,
      enabled: () => this.chat !== undefined,
      onChange: () => this.filesChanged(),
    });
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
      } else if (event.key === "Escape" && this.replyingTo) {
        event.preventDefault();
        this.setReply(undefined);
      }
    });
    this.e.text.addEventListener("input", () => {
      if (this.chat && this.e.text.value.trim()) this.typing.announce(() => this.socket.typing(this.chatId));
    });
    this.e.cancelReply.addEventListener("click", () => {
      this.setReply(undefined);
      this.e.text.focus();
    });
    this.e.partnerProfile.addEventListener("click", () => {
      const partner = this.chat && this.list.partnerOf(this.chat);
      if (partner) this.onProfile(partner);
    });
    for (const button of this.e.muteMenu.querySelectorAll<HTMLButtonElement>("button[data-mute]")) {
      button.addEventListener("click", () => void this.mute(button.dataset.mute ?? ""));
    }
    // A click elsewhere closes an open reaction picker.
    document.addEventListener("click", (event) => {
      const target = event.target as HTMLElement;
      for (const picker of this.e.messages.querySelectorAll<HTMLElement>(".picker:not([hidden])")) {
        const bar = picker.parentElement;
        if (bar && !bar.contains(target))
          togglePicker(picker, bar.querySelector<HTMLButtonElement>(".react-toggle"), false);
      }
    });
    // Escape closes an open reaction picker and gives the focus back to its button.
    this.e.messages.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      const picker = (event.target as HTMLElement).closest<HTMLElement>(".picker");
      if (!picker) return;
      event.preventDefault();
      const toggle = picker.parentElement?.querySelector<HTMLButtonElement>(".react-toggle");
      togglePicker(picker, toggle, false);
      toggle?.focus();
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
    this.messages.clear();
    this.revealed.clear();
    this.pinned = new Set();
    this.setReply(undefined);
    this.sendWhenUploaded = false;
    this.files.clear();
    this.typing.clear();
    this.e.messages.replaceChildren();
    this.e.pinsList.replaceChildren();
    this.e.pinsPanel.open = false;
    this.e.pinsPanel.hidden = true;
    this.e.muteMenu.open = false;
    this.e.view.hidden = false;
    this.e.partnerProfile.hidden = chat.type !== "direct";
    showError(this.e.error, "");
    this.showMute();
    const title = await this.list.titleOf(chat);
    if (run !== this.opened) return;
    this.e.title.textContent = title;
    this.e.partnerProfile.setAttribute("aria-label", `About ${title}`);
    this.showPresence();
    this.e.text.focus();
    void this.loadPins();
    try {
      const page = await this.platform.history(chat.id);
      if (run !== this.opened) return;
      for (const m of markBlockedSenders(page.messages, this.blocked())) this.insert(m);
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
    this.setReply(undefined);
    this.sendWhenUploaded = false;
    this.files.clear();
    this.e.view.hidden = true;
  }

  onMessage(m: ClientMessage): void {
    if (m.chatId !== this.chat?.id) return;
    const follow = this.atEnd() || m.senderId === this.me;
    this.typing.stopped(m.senderId);
    this.insert(m);
    if (follow) this.scrollToEnd();
    this.markRead();
  }

  /** An edited or deleted message: shown as it is now, where it is on screen. */
  onChanged(m: ClientMessage): void {
    if (m.chatId !== this.chat?.id) return;
    if (this.messages.has(m.id)) this.insert(m);
    if (m.deleted && this.replyingTo?.id === m.id) this.setReply(undefined);
    // The replies to it on screen quote it as it is now.
    for (const reply of [...this.messages.values()]) {
      if (reply.replyTo?.id !== m.id) continue;
      const replyTo: ReplyRef = m.deleted
        ? { ...reply.replyTo, preview: "", deleted: true }
        : { ...reply.replyTo, preview: preview(m.message) };
      this.rerender({ ...reply, replyTo });
    }
  }

  onTyping(chatId: string, userId: string): void {
    if (chatId === this.chat?.id && userId !== this.me) this.typing.started(userId);
  }

  /** A reaction frame: the count is the server's; who reacted follows the frame's user. */
  onReaction(frame: ReactionFrame): void {
    if (frame.chatId !== this.chat?.id) return;
    const m = this.messages.get(frame.messageId);
    if (!m) return;
    this.rerender(applyReaction(m, frame.emoji, frame.userId, frame.op, frame.count));
  }

  onPinsChanged(frame: PinsChangedFrame): void {
    if (frame.chatId === this.chat?.id) void this.loadPins();
  }

  /** The caller's mute of a chat changed (here or elsewhere). */
  showMute(): void {
    const chat = this.chat && (this.list.get(this.chat.id) ?? this.chat);
    if (!chat) return;
    const muted = isMuted(chat);
    this.e.muteState.textContent = muteText(chat);
    const unmute = this.e.muteMenu.querySelector<HTMLButtonElement>('button[data-mute="off"]');
    if (unmute) unmute.hidden = !muted;
  }

  /** Messages from these senders fold (in groups); the ones on screen follow at once. */
  blockedChanged(): void {
    const blocked = this.blocked();
    for (const m of [...this.messages.values()]) {
      const marked = markBlockedSender(m, blocked);
      if (Boolean(marked.blockedSender) !== Boolean(m.blockedSender)) this.rerender(marked);
    }
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

  /** Loads the page before the first shown message; one load at a time. */
  private loadOlder(): Promise<void> {
    const chat = this.chat;
    const first = this.e.messages.querySelector<HTMLElement>("li[data-seq]");
    if (this.older) return this.older;
    if (!chat || !first) return Promise.resolve();
    const run = this.opened;
    this.older = (async () => {
      try {
        const page = await this.platform.history(chat.id, Number(first.dataset.seq));
        if (run !== this.opened) return;
        const fromEnd = this.e.log.scrollHeight - this.e.log.scrollTop;
        for (const m of markBlockedSenders(page.messages, this.blocked())) this.insert(m);
        this.e.log.scrollTop = this.e.log.scrollHeight - fromEnd;
        this.hasMore = page.hasMore;
        this.e.loadOlder.hidden = !page.hasMore;
      } catch (err) {
        showError(this.e.error, err);
        this.hasMore = false;
      } finally {
        this.older = undefined;
      }
    })();
    return this.older;
  }

  /**
   * Scrolls to a message of the open chat and highlights it, loading older pages until it is
   * there (or the history has no more).
   */
  async jumpTo(messageId: string, seq: number): Promise<void> {
    const run = this.opened;
    const find = () =>
      this.e.messages.querySelector<HTMLElement>(`li[data-message-id="${CSS.escape(messageId)}"]`);
    let el = find();
    while (!el && this.hasMore && run === this.opened) {
      const first = Number(this.e.messages.querySelector<HTMLElement>("li[data-seq]")?.dataset.seq ?? 0);
      if (first !== 0 && first <= seq) break;
      await this.loadOlder();
      const now = Number(this.e.messages.querySelector<HTMLElement>("li[data-seq]")?.dataset.seq ?? 0);
      if (now === first) break;
      el = find();
    }
    if (run !== this.opened) return;
    if (!el) {
      this.say("That message is no longer in this chat.");
      return;
    }
    for (const old of this.e.messages.querySelectorAll(".highlight")) old.classList.remove("highlight");
    el.classList.add("highlight");
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
    this.say("Showing the message.");
    setTimeout(() => el.classList.remove("highlight"), HIGHLIGHT_MS);
  }

  private say(text: string): void {
    this.e.announce.textContent = "";
    // A change the screen reader notices even when the same text comes twice.
    requestAnimationFrame(() => {
      this.e.announce.textContent = text;
    });
  }

  private setReply(ref: ReplyRef | undefined): void {
    this.replyingTo = ref;
    this.e.replyBar.hidden = !ref;
    if (!ref) {
      this.e.replyText.replaceChildren();
      return;
    }
    const name = h("strong", {}, ref.senderId === this.me ? "yourself" : "…");
    if (ref.senderId !== this.me)
      void this.platform.nameOf(ref.senderId).then((n) => name.replaceChildren(n));
    this.e.replyText.replaceChildren("Replying to ", name, ": ", h("q", {}, ref.preview || "Attachment"));
  }

  private startReply(m: MessageView): void {
    this.setReply({
      id: m.id,
      seq: m.seq,
      senderId: m.senderId,
      preview: preview(m.message),
      deleted: false,
    });
    this.e.text.focus();
  }

  /**
   * Sends what the composer holds: its text and the uploaded files. While files are uploading the
   * draft waits for them (and is sent once they are all done, unless one failed).
   */
  private sendDraft(): void {
    const text = this.e.text.value.trim();
    const chat = this.chat;
    if (!chat) return;
    if (this.files.busy) {
      this.sendWhenUploaded = true;
      this.say("The message is sent once the files are uploaded.");
      return;
    }
    const attachments = this.files.ready.map(({ id, name, size, contentType, width, height }) => ({
      id,
      name,
      size,
      contentType,
      ...(width !== undefined ? { width } : {}),
      ...(height !== undefined ? { height } : {}),
    }));
    if (!text && attachments.length === 0) return;
    this.e.text.value = "";
    this.files.clear();
    const replyTo = this.replyingTo;
    this.setReply(undefined);
    showError(this.e.error, "");
    const clientMsgId = crypto.randomUUID();
    const pending = this.element(
      {
        id: "",
        chatId: chat.id,
        seq: 0,
        senderId: this.me,
        message: text,
        clientMsgId,
        createdAt: new Date().toISOString(),
        reactions: [],
        mentions: [],
        attachments,
        ...(replyTo ? { replyTo } : {}),
      },
      "Sending…",
    );
    pending.dataset.clientMsgId = clientMsgId;
    this.e.messages.append(pending);
    this.scrollToEnd();
    this.socket
      .send({ chatId: chat.id }, text, {
        clientMsgId,
        ...(replyTo ? { replyTo: replyTo.id } : {}),
        ...(attachments.length > 0 ? { attachmentIds: attachments.map((a) => a.id) } : {}),
      })
      .then(
        () => pending.querySelector(".state")?.replaceChildren(),
        (err: Error) => {
          pending.classList.add("failed");
          pending.querySelector(".state")?.replaceChildren(`Not sent: ${errorText(err)}`);
          showError(this.e.error, err);
        },
      );
  }

  /** The composer's files changed: a message of files only needs no text; a waiting send may go. */
  private filesChanged(): void {
    this.e.text.required = !this.files.hasFiles;
    if (!this.sendWhenUploaded || this.files.busy) return;
    this.sendWhenUploaded = false;
    if (this.files.hasFailed) {
      this.say("Not sent: a file could not be uploaded.");
      return;
    }
    this.sendDraft();
  }

  /** Puts a message in seq order; one already shown (by seq, or pending by clientMsgId) is replaced. */
  private insert(m: ClientMessage): void {
    const list = this.e.messages;
    this.messages.set(m.id, m);
    const el = this.element(m, "");
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

  /** Shows a message again after it changed, keeping the focus where it was inside it. */
  private rerender(m: ClientMessage): void {
    this.messages.set(m.id, m);
    const existing = this.e.messages.querySelector<HTMLElement>(`li[data-seq="${m.seq}"]`);
    if (!existing) return;
    const focused = document.activeElement;
    const focusKey =
      focused instanceof HTMLElement && existing.contains(focused) ? focused.dataset.focusKey : undefined;
    const pickerOpen = !existing.querySelector<HTMLElement>(".picker")?.hidden;
    const el = this.element(m, "");
    if (existing.classList.contains("highlight")) el.classList.add("highlight");
    existing.replaceWith(el);
    if (pickerOpen)
      togglePicker(el.querySelector(".picker"), el.querySelector<HTMLButtonElement>(".react-toggle"), true);
    if (focusKey) el.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    else if (focused === existing) el.focus({ preventScroll: true });
  }

  private element(m: ClientMessage, state: string): HTMLLIElement {
    const mine = m.senderId === this.me;
    const sent = m.seq > 0;
    const mentionsMe = !mine && m.mentions.includes(this.me);
    const classes = [
      "msg",
      mine ? "mine" : "",
      mentionsMe ? "mentions-me" : "",
      this.pinned.has(m.id) ? "pinned" : "",
    ];
    const li = h("li", { class: classes.filter(Boolean).join(" "), tabindex: sent ? -1 : undefined });
    if (sent) {
      li.dataset.seq = String(m.seq);
      li.dataset.messageId = m.id;
    }
    const sender = h("span", { class: "sender" }, mine ? "You" : "…");
    if (!mine) void this.platform.nameOf(m.senderId).then((name) => sender.replaceChildren(name));

    if (m.blockedSender && this.chat?.type === "group" && !this.revealed.has(m.id) && !m.deleted) {
      const show = h(
        "button",
        {
          type: "button",
          class: "link",
          "data-focus-key": "show",
          "aria-label": "Show the message from a blocked user",
        },
        "show",
      );
      show.addEventListener("click", () => {
        this.revealed.add(m.id);
        this.rerender(m);
        this.e.messages.querySelector<HTMLElement>(`li[data-seq="${m.seq}"]`)?.focus();
      });
      li.classList.add("folded");
      li.append(h("p", { class: "blocked-fold" }, "Message from a blocked user — ", show));
      return li;
    }

    if (m.replyTo) li.append(this.replyQuote(m.replyTo));
    li.append(
      h(
        "p",
        { class: "meta" },
        sender,
        " ",
        h("time", { datetime: m.createdAt }, formatTime(m.createdAt)),
        this.pinned.has(m.id) ? h("span", { class: "pin-marker" }, " · Pinned") : null,
        mentionsMe ? h("span", { class: "visually-hidden" }, " · mentions you") : null,
        " ",
        h("span", { class: "state" }, state),
      ),
    );
    const text = h("p", { class: m.deleted ? "text deleted" : "text" });
    if (m.deleted) text.append("Message deleted");
    else this.fillText(text, m);
    li.append(text);
    if (!m.deleted && m.attachments?.length) li.append(attachmentList(m.attachments, this.platform.api));
    if (!sent || m.deleted) return li;
    if (m.reactions.length > 0) li.append(this.reactionChips(m));
    li.append(this.actions(m));
    return li;
  }

  /** The text with `@username` of the members it mentions marked (as text nodes, never HTML). */
  private fillText(el: HTMLElement, m: MessageView): void {
    el.textContent = m.message;
    if (m.mentions.length === 0) return;
    void Promise.all(m.mentions.map((id) => this.platform.profile(id).catch(() => undefined))).then(
      (profiles) => {
        const byName = new Map<string, string>();
        for (const p of profiles) if (p) byName.set(p.username.toLowerCase(), p.id);
        const parts: (Node | string)[] = [];
        let at = 0;
        for (const match of m.message.matchAll(MENTION)) {
          const id = byName.get((match[1] ?? "").toLowerCase());
          if (!id) continue;
          parts.push(m.message.slice(at, match.index));
          parts.push(h("span", { class: id === this.me ? "mention mention-me" : "mention" }, match[0]));
          at = match.index + match[0].length;
        }
        if (at === 0) return;
        parts.push(m.message.slice(at));
        el.replaceChildren(...parts);
      },
    );
  }

  private replyQuote(ref: ReplyRef): HTMLElement {
    const name = h("span", { class: "reply-sender" }, ref.senderId === this.me ? "You" : "…");
    if (ref.senderId !== this.me)
      void this.platform.nameOf(ref.senderId).then((n) => name.replaceChildren(n));
    const quote = ref.deleted
      ? h("span", { class: "reply-preview deleted" }, "Original message deleted")
      : h("span", { class: "reply-preview" }, ref.preview || "Attachment");
    const button = h(
      "button",
      {
        type: "button",
        class: "reply-ref",
        "data-focus-key": "reply-ref",
        title: "Go to the original message",
      },
      h("span", { class: "visually-hidden" }, "In reply to "),
      name,
      ": ",
      quote,
    );
    button.addEventListener("click", () => void this.jumpTo(ref.id, ref.seq));
    return button;
  }

  private reactionChips(m: MessageView): HTMLElement {
    return h(
      "ul",
      { class: "reactions", "aria-label": "Reactions" },
      ...m.reactions.map((r) => {
        const mineToo = r.userIds.includes(this.me);
        const chip = h(
          "button",
          {
            type: "button",
            class: "reaction",
            "aria-pressed": mineToo ? "true" : "false",
            "aria-label": `${r.emoji} ${r.count}${mineToo ? ", yours: remove" : ": react too"}`,
            "data-focus-key": `chip-${r.emoji}`,
          },
          h("span", { class: "emoji" }, r.emoji),
          " ",
          h("span", { class: "count" }, String(r.count)),
        );
        chip.addEventListener("click", () => void this.toggleReaction(m.id, r.emoji));
        return h("li", {}, chip);
      }),
    );
  }

  private actions(m: MessageView): HTMLElement {
    const reply = h(
      "button",
      { type: "button", "data-focus-key": "reply", "aria-label": "Reply to this message" },
      "Reply",
    );
    reply.addEventListener("click", () => this.startReply(m));
    const toggle = h(
      "button",
      {
        type: "button",
        class: "react-toggle",
        "data-focus-key": "react",
        "aria-expanded": "false",
        "aria-label": "Add a reaction",
      },
      "React",
    );
    const picker = h(
      "div",
      { class: "picker", role: "group", "aria-label": "Pick a reaction", hidden: true },
      ...PICKER_EMOJI.map((emoji) => {
        const b = h(
          "button",
          { type: "button", "aria-label": `React with ${emoji}`, "data-focus-key": `pick-${emoji}` },
          emoji,
        );
        b.addEventListener("click", () => {
          togglePicker(picker, toggle, false);
          toggle.focus();
          void this.react(m.id, emoji);
        });
        return b;
      }),
    );
    toggle.addEventListener("click", () => {
      togglePicker(picker, toggle, picker.hidden !== false);
      if (!picker.hidden) picker.querySelector("button")?.focus();
    });
    const bar = h("div", { class: "actions" }, reply, toggle);
    if (this.canPin()) {
      const pinned = this.pinned.has(m.id);
      const pin = h(
        "button",
        {
          type: "button",
          "data-focus-key": "pin",
          "aria-label": pinned ? "Unpin this message" : "Pin this message",
        },
        pinned ? "Unpin" : "Pin",
      );
      pin.addEventListener("click", () => void this.togglePin(m.id));
      bar.append(pin);
    }
    bar.append(picker);
    return bar;
  }

  private canPin(): boolean {
    const chat = this.chat;
    return chat !== undefined && (chat.type === "direct" || chat.ownerId === this.me);
  }

  private async toggleReaction(messageId: string, emoji: string): Promise<void> {
    const m = this.messages.get(messageId);
    const mine = m?.reactions.find((r) => r.emoji === emoji)?.userIds.includes(this.me);
    if (mine) await this.unreact(messageId, emoji);
    else await this.react(messageId, emoji);
  }

  private async react(messageId: string, emoji: string): Promise<void> {
    const chatId = this.chatId;
    try {
      await this.platform.react(chatId, messageId, emoji);
      const m = this.messages.get(messageId);
      if (m && chatId === this.chatId) this.rerender(applyReaction(m, emoji, this.me, "add"));
    } catch (err) {
      showError(this.e.error, err);
    }
  }

  private async unreact(messageId: string, emoji: string): Promise<void> {
    const chatId = this.chatId;
    try {
      await this.platform.unreact(chatId, messageId, emoji);
      const m = this.messages.get(messageId);
      if (m && chatId === this.chatId) this.rerender(applyReaction(m, emoji, this.me, "remove"));
    } catch (err) {
      showError(this.e.error, err);
    }
  }

  private async togglePin(messageId: string): Promise<void> {
    const chatId = this.chatId;
    showError(this.e.error, "");
    try {
      if (this.pinned.has(messageId)) await this.platform.unpin(chatId, messageId);
      else await this.platform.pin(chatId, messageId);
      if (chatId === this.chatId) await this.loadPins();
    } catch (err) {
      showError(this.e.error, err);
    }
  }

  /** Fetches the pins of the open chat and shows them in the panel and on their messages. */
  private async loadPins(): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    const run = ++this.pinsRun;
    const opened = this.opened;
    let pins: PinView[];
    try {
      pins = await this.platform.pins(chat.id);
    } catch {
      return;
    }
    if (run !== this.pinsRun || opened !== this.opened) return;
    const before = this.pinned;
    this.pinned = new Set(pins.map((p) => p.message.id));
    this.e.pinsPanel.hidden = pins.length === 0;
    if (pins.length === 0) this.e.pinsPanel.open = false;
    this.e.pinsCount.textContent = String(pins.length);
    this.e.pinsList.replaceChildren(...pins.map((p) => this.pinItem(p)));
    for (const id of new Set([...before, ...this.pinned])) {
      if (before.has(id) === this.pinned.has(id)) continue;
      const m = this.messages.get(id);
      if (m) this.rerender(m);
    }
  }

  private pinItem(pin: PinView): HTMLElement {
    const m = markBlockedSender(pin.message, this.blocked());
    const name = h("span", { class: "sender" }, m.senderId === this.me ? "You" : "…");
    if (m.senderId !== this.me) void this.platform.nameOf(m.senderId).then((n) => name.replaceChildren(n));
    const text = m.blockedSender ? "Message from a blocked user" : preview(m.message) || "Attachment";
    const button = h(
      "button",
      { type: "button", class: "pin-item" },
      name,
      ": ",
      h("span", { class: "pin-text" }, text),
    );
    button.addEventListener("click", () => {
      this.e.pinsPanel.open = false;
      void this.jumpTo(m.id, m.seq);
    });
    return h("li", {}, button);
  }

  private async mute(choice: string): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    this.e.muteMenu.open = false;
    showError(this.e.error, "");
    try {
      if (choice === "off") {
        await this.platform.unmute(chat.id);
        this.list.setMute(chat.id, false, null);
      } else {
        const hours = Number(choice);
        const until = hours > 0 ? new Date(Date.now() + hours * 3_600_000) : null;
        await this.platform.mute(chat.id, until);
        this.list.setMute(chat.id, true, until ? until.toISOString() : null);
      }
      if (chat.id === this.chatId) this.showMute();
    } catch (err) {
      showError(this.e.error, err);
    }
    this.e.muteMenu.querySelector("summary")?.focus();
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

/**
 * A message with one user's reaction added or removed. `count` is the server's (a frame's) when
 * known; otherwise it follows the change, which does nothing when it was already so.
 */
export function applyReaction(
  m: ClientMessage,
  emoji: string,
  userId: string,
  op: "add" | "remove",
  count?: number,
): ClientMessage {
  const reactions: ReactionView[] = m.reactions.map((r) => ({ ...r, userIds: [...r.userIds] }));
  let r = reactions.find((x) => x.emoji === emoji);
  if (!r) {
    if (op === "remove" && !count) return m;
    r = { emoji, count: 0, userIds: [] };
    reactions.push(r);
  }
  const had = r.userIds.includes(userId);
  if (op === "add" && !had) {
    r.userIds.push(userId);
    if (count === undefined) r.count += 1;
  } else if (op === "remove" && had) {
    r.userIds = r.userIds.filter((id) => id !== userId);
    if (count === undefined) r.count = Math.max(0, r.count - 1);
  }
  if (count !== undefined) r.count = count;
  return { ...m, reactions: reactions.filter((x) => x.count > 0) };
}

function togglePicker(
  picker: HTMLElement | null,
  toggle: HTMLButtonElement | null | undefined,
  open: boolean,
): void {
  if (!picker) return;
  picker.hidden = !open;
  toggle?.setAttribute("aria-expanded", String(open));
}

/** What a reply shows of its original: the first 200 characters (code points). */
function preview(text: string): string {
  return [...text].slice(0, 200).join("");
}
