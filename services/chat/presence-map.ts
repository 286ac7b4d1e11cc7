import type { PresenceStamp } from "../../lib/contracts.ts";

/**
 * Which gateway nodes hold a WebSocket of which user, as the chat service knows it: fed by the
 * gateways' `ws.online`/`ws.offline` broadcasts, rebuilt from each gateway's own list at start and
 * periodically (so a lost event heals), and emptied of a gateway the moment the bus reports that
 * node gone. Delivery asks it which gateways to call, so fan-out costs one call per gateway that
 * holds recipients, not one per gateway in the cluster.
 *
 * A gateway's list can arrive after events it sent later were applied (the bus hands the list to
 * the awaiting caller a tick after it ran the event handlers read with it); applying it then would
 * take back those users' connections until the next rebuild, and their messages would go only
 * through resume. Events and lists carry the gateway's stamp, and a list older than the last event
 * applied from that gateway's process is skipped (the next rebuild comes soon; events keep the
 * map current meanwhile).
 */
export class PresenceMap {
  private readonly byUser = new Map<string, Set<string>>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly lastSeen = new Map<string, string>();
  private readonly stamps = new Map<string, PresenceStamp>();

  /** Resolves whether the user was offline everywhere until now. */
  online(nodeId: string, userId: string, stamp?: PresenceStamp): boolean {
    this.note(nodeId, stamp);
    const wasOffline = !this.isOnline(userId);
    const nodes = this.byUser.get(userId) ?? new Set<string>();
    this.byUser.set(userId, nodes.add(nodeId));
    const users = this.byNode.get(nodeId) ?? new Set<string>();
    this.byNode.set(nodeId, users.add(userId));
    return wasOffline;
  }

  /** Resolves whether the user has no connection left anywhere. */
  offline(nodeId: string, userId: string, at = new Date().toISOString(), stamp?: PresenceStamp): boolean {
    this.note(nodeId, stamp);
    const nodes = this.byUser.get(userId);
    nodes?.delete(nodeId);
    this.byNode.get(nodeId)?.delete(userId);
    if (nodes && nodes.size > 0) return false;
    this.byUser.delete(userId);
    this.lastSeen.set(userId, at);
    return true;
  }

  /**
   * Replaces what is known of one gateway with its list; resolves the users who went offline
   * everywhere. A list older than the events already applied from that gateway changes nothing.
   */
  replaceNode(nodeId: string, userIds: string[], stamp?: PresenceStamp): string[] {
    const known = this.stamps.get(nodeId);
    if (stamp && known?.instance === stamp.instance && known.version > stamp.version) return [];
    this.note(nodeId, stamp);
    const now = new Set(userIds);
    const gone: string[] = [];
    for (const userId of this.byNode.get(nodeId) ?? []) {
      if (!now.has(userId) && this.offline(nodeId, userId)) gone.push(userId);
    }
    for (const userId of now) this.online(nodeId, userId);
    return gone;
  }

  /** Forgets a gateway that left; resolves the users who went offline everywhere with it. */
  dropNode(nodeId: string): string[] {
    this.stamps.delete(nodeId);
    return this.replaceNode(nodeId, []);
  }

  isOnline(userId: string): boolean {
    return (this.byUser.get(userId)?.size ?? 0) > 0;
  }

  lastSeenOf(userId: string): string | null {
    return this.lastSeen.get(userId) ?? null;
  }

  /** The gateways to call for these users, each with the users it holds. */
  route(userIds: Iterable<string>): Map<string, string[]> {
    const routes = new Map<string, string[]>();
    for (const userId of userIds) {
      for (const nodeId of this.byUser.get(userId) ?? []) {
        const list = routes.get(nodeId);
        if (list) list.push(userId);
        else routes.set(nodeId, [userId]);
      }
    }
    return routes;
  }

  nodes(): string[] {
    return [...this.byNode.keys()];
  }

  private note(nodeId: string, stamp: PresenceStamp | undefined): void {
    if (stamp) this.stamps.set(nodeId, stamp);
  }
}
