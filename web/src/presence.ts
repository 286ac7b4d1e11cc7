/**
 * Who is online, from the `presence` frames: the server sends one for each online contact when
 * the socket opens, and one whenever a contact comes or goes.
 */
import type { PresenceView } from "../../client/types.ts";
import { formatTime } from "./elements.ts";

export class Presence {
  private readonly users = new Map<string, PresenceView>();

  update(view: PresenceView): void {
    this.users.set(view.userId, view);
  }

  isOnline(userId: string): boolean {
    return this.users.get(userId)?.status === "online";
  }

  /** "Online", "Last seen 10:42", or "" when nothing is known. */
  describe(userId: string): string {
    const view = this.users.get(userId);
    if (!view) return "";
    if (view.status === "online") return "Online";
    return view.lastSeen ? `Last seen ${formatTime(view.lastSeen)}` : "Offline";
  }
}
