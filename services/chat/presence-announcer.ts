/**
 * Tells users' contacts when they come online or go offline, and tells a user who comes online
 * which contacts are online, with one store query per batch of changes instead of one per change.
 *
 * A connection storm (10,000 sockets opened in a minute, or a gateway's sockets all reconnecting
 * elsewhere) used to cost one `contactsOf` query per connect. On FerretDB that query (`members`
 * holds the user) is a scan of every chat, so the queries queued in the store for many seconds,
 * and starved the sends, the session lookups and the readiness pings behind them. Here changes
 * gather while a batch is being worked on, and the next batch takes them all (up to MAX_BATCH
 * users) in one query; an idle node still answers a single change at once. The frames carry the
 * state at the time they are sent (a user who came and went within one batch is announced once,
 * as offline): presence is ephemeral, and `chat.presence` answers the current state at any time.
 */
import type { PresenceView, ServerFrame } from "../../lib/contracts.ts";

/** Users whose contacts one query looks up at most. */
export const MAX_BATCH = 500;

export interface AnnouncerDeps {
  /** Each given user's contacts (everyone who shares a chat with them, themself excluded). */
  contactsOf(userIds: string[]): Promise<Map<string, string[]>>;
  presenceOf(userId: string): PresenceView;
  deliver(userIds: string[], frame: ServerFrame): void;
  /** Whether this node is the one that announces (others skip the work). */
  isAnnouncer(): boolean;
  onError(err: unknown): void;
}

export class PresenceAnnouncer {
  private readonly d: AnnouncerDeps;
  /** Users whose presence changed: their contacts are told. */
  private readonly changed = new Set<string>();
  /** Users who came online, with the batch count then: they are told which contacts are online. */
  private readonly arrived = new Map<string, number>();
  /** Online users, with the batch count once their online state went out. */
  private readonly announcedAt = new Map<string, number>();
  /** Batches whose frames went out. */
  private batches = 0;
  private running: Promise<void> | undefined;

  constructor(deps: AnnouncerDeps) {
    this.d = deps;
  }

  online(userId: string): void {
    this.changed.add(userId);
    if (!this.arrived.has(userId)) this.arrived.set(userId, this.batches);
    this.kick();
  }

  offline(userIds: Iterable<string>): void {
    for (const userId of userIds) {
      this.changed.add(userId);
      this.arrived.delete(userId);
    }
    this.kick();
  }

  /** Resolves once every change noted so far has been announced (or failed). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.changed.size === 0) return;
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.changed.size > 0) {
      const batch: string[] = [];
      for (const userId of this.changed) {
        batch.push(userId);
        if (batch.length >= MAX_BATCH) break;
      }
      const arrived = new Map<string, number>();
      for (const userId of batch) {
        this.changed.delete(userId);
        const at = this.arrived.get(userId);
        if (at === undefined) continue;
        arrived.set(userId, at);
        this.arrived.delete(userId);
      }
      if (!this.d.isAnnouncer()) continue;
      try {
        this.announce(batch, arrived, await this.d.contactsOf(batch));
      } catch (err) {
        this.d.onError(err);
      }
    }
  }

  private announce(batch: string[], arrived: Map<string, number>, contacts: Map<string, string[]>): void {
    this.batches += 1;
    // Each user's current state to their contacts: one frame (one call per gateway) per user.
    for (const userId of batch) {
      const view = this.d.presenceOf(userId);
      if (view.status === "online") this.announcedAt.set(userId, this.batches);
      else this.announcedAt.delete(userId);
      const audience = contacts.get(userId) ?? [];
      if (audience.length > 0) this.d.deliver(audience, { type: "presence", ...view });
    }
    // Who is online, to each user who came online. Skipped: a contact whose online state went out
    // after the user arrived (this batch included) has reached them, and one whose change is still
    // queued will; every other online contact goes out once, to all the arrivals who know it.
    const told = new Map<string, string[]>();
    for (const [userId, arrivedAt] of arrived) {
      if (this.d.presenceOf(userId).status !== "online") continue;
      for (const contact of contacts.get(userId) ?? []) {
        if ((this.announcedAt.get(contact) ?? 0) > arrivedAt || this.changed.has(contact)) continue;
        const list = told.get(contact);
        if (list) list.push(userId);
        else told.set(contact, [userId]);
      }
    }
    for (const [contact, recipients] of told) {
      const view = this.d.presenceOf(contact);
      if (view.status === "online") this.d.deliver(recipients, { type: "presence", ...view });
    }
  }
}
