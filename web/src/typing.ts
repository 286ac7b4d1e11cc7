/**
 * Typing: tells the others at most every few seconds while one types, and shows who else is
 * typing until they stop, send, or go quiet.
 */

/** Send a typing frame at most this often (the gateway drops extra ones anyway). */
const ANNOUNCE_EVERY_MS = 3_000;
/** Someone is shown typing this long after their last typing frame. */
const SHOW_FOR_MS = 4_000;

export class Typing {
  private readonly el: HTMLElement;
  private readonly nameOf: (userId: string) => Promise<string>;
  private readonly typers = new Map<string, { name: string; timer: ReturnType<typeof setTimeout> }>();
  private lastAnnounced = 0;

  constructor(el: HTMLElement, nameOf: (userId: string) => Promise<string>) {
    this.el = el;
    this.nameOf = nameOf;
  }

  announce(send: () => void): void {
    const now = Date.now();
    if (now - this.lastAnnounced < ANNOUNCE_EVERY_MS) return;
    this.lastAnnounced = now;
    send();
  }

  async started(userId: string): Promise<void> {
    const name = await this.nameOf(userId);
    clearTimeout(this.typers.get(userId)?.timer);
    this.typers.set(userId, { name, timer: setTimeout(() => this.stopped(userId), SHOW_FOR_MS) });
    this.render();
  }

  stopped(userId: string): void {
    const typer = this.typers.get(userId);
    if (!typer) return;
    clearTimeout(typer.timer);
    this.typers.delete(userId);
    this.render();
  }

  clear(): void {
    for (const { timer } of this.typers.values()) clearTimeout(timer);
    this.typers.clear();
    this.lastAnnounced = 0;
    this.render();
  }

  private render(): void {
    const names = [...this.typers.values()].map((t) => t.name);
    if (names.length === 0) this.el.textContent = "";
    else if (names.length === 1) this.el.textContent = `${names[0]} is typing…`;
    else this.el.textContent = `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
  }
}
