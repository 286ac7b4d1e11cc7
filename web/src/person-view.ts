/**
 * Another user's profile: name, username and bio, a way to message them, and Block / Unblock.
 * Blocking stops direct chats, typing and presence between the two; in groups their messages fold.
 */
import type { ChatView, PublicProfile } from "../../client/types.ts";
import { showError } from "./errors.ts";
import type { Platform } from "./platform.ts";

export interface PersonElements {
  view: HTMLElement;
  name: HTMLElement;
  username: HTMLElement;
  bio: HTMLElement;
  message: HTMLButtonElement;
  block: HTMLButtonElement;
  close: HTMLButtonElement;
  status: HTMLElement;
  error: HTMLElement;
}

export class PersonView {
  private readonly e: PersonElements;
  private readonly platform: Platform;
  private readonly blocked: Set<string>;
  private readonly onBlockedChange: () => void;
  private readonly onChat: (chat: ChatView) => void;
  private readonly onClose: () => void;
  private user: PublicProfile | undefined;
  private busy = false;
  /** Counts the showings, so a profile that arrives after the view was shown again is dropped. */
  private shown = 0;

  constructor(o: {
    elements: PersonElements;
    platform: Platform;
    /** The ids the caller blocks: changed here, shared with the rest of the page. */
    blocked: Set<string>;
    onBlockedChange(): void;
    onChat(chat: ChatView): void;
    onClose(): void;
  }) {
    this.e = o.elements;
    this.platform = o.platform;
    this.blocked = o.blocked;
    this.onBlockedChange = o.onBlockedChange;
    this.onChat = o.onChat;
    this.onClose = o.onClose;
    this.e.block.addEventListener("click", () => void this.toggleBlock());
    this.e.message.addEventListener("click", () => void this.message());
    this.e.close.addEventListener("click", () => {
      this.hide();
      this.onClose();
    });
  }

  get shownUser(): string | undefined {
    return this.e.view.hidden ? undefined : this.user?.id;
  }

  async show(userId: string): Promise<void> {
    this.e.view.hidden = false;
    this.e.status.textContent = "";
    showError(this.e.error, "");
    this.e.name.textContent = "…";
    this.e.username.textContent = "";
    this.e.bio.textContent = "";
    this.user = undefined;
    const run = ++this.shown;
    try {
      const user = await this.platform.profile(userId);
      if (run !== this.shown) return;
      this.user = user;
      this.e.name.textContent = user.displayName;
      this.e.username.textContent = `@${user.username}`;
      this.e.bio.textContent = user.bio ?? "";
      this.e.bio.hidden = !user.bio;
      this.showBlock();
    } catch (err) {
      if (run !== this.shown) return;
      showError(this.e.error, err);
    }
    this.e.name.focus();
  }

  hide(): void {
    this.e.view.hidden = true;
  }

  private showBlock(): void {
    const user = this.user;
    if (!user) return;
    const blocked = this.blocked.has(user.id);
    this.e.block.textContent = blocked ? "Unblock" : "Block";
    this.e.block.setAttribute("aria-label", `${blocked ? "Unblock" : "Block"} ${user.displayName}`);
    this.e.block.setAttribute("aria-pressed", String(blocked));
    this.e.message.hidden = blocked;
  }

  private async toggleBlock(): Promise<void> {
    const user = this.user;
    if (!user || this.busy) return;
    this.busy = true;
    showError(this.e.error, "");
    try {
      if (this.blocked.has(user.id)) {
        await this.platform.unblock(user.id);
        this.blocked.delete(user.id);
        this.e.status.textContent = `You unblocked ${user.displayName}.`;
      } else {
        await this.platform.block(user.id);
        this.blocked.add(user.id);
        this.e.status.textContent = `You blocked ${user.displayName}. You will not get direct messages from each other; their group messages are folded.`;
      }
      this.showBlock();
      this.onBlockedChange();
    } catch (err) {
      showError(this.e.error, err);
    } finally {
      this.busy = false;
    }
  }

  private async message(): Promise<void> {
    const user = this.user;
    if (!user) return;
    showError(this.e.error, "");
    try {
      this.onChat(await this.platform.openDirect(user.id));
    } catch (err) {
      showError(this.e.error, err);
    }
  }
}
