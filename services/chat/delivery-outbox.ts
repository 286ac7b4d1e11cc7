/**
 * Frames bound for gateways, sent in batches: everything a chat node delivers to one gateway in
 * one turn of the event loop (the messages of a stored batch, typing, receipts) goes in one
 * `gateway.deliverMany` call, so the bus carries one request per gateway per moment instead of one
 * per frame, and a gateway handles them in the order they were given. A gateway that holds none of
 * a frame's recipients gets nothing (the presence map routes each frame).
 */
import type { ServerFrame } from "../../lib/contracts.ts";

export interface Delivery {
  userIds: string[];
  frame: ServerFrame;
}

/** Deliveries in one call at most. */
export const MAX_DELIVERIES_PER_CALL = 200;
/**
 * The size one call's deliveries may reach, by a bound on their JSON (every string character
 * counted as 6 bytes, its longest escape): a bus message stays well under NATS's default 1 MB
 * payload limit even with messages of the longest length to large groups.
 */
export const MAX_BYTES_PER_CALL = 512 * 1024;

/** An upper bound on a delivery's JSON size. */
export function sizeBound(d: Delivery): number {
  let chars = 0;
  for (const id of d.userIds) chars += id.length + 3;
  for (const [key, value] of Object.entries(d.frame)) {
    chars += key.length + 4;
    chars += typeof value === "string" ? value.length : (JSON.stringify(value) ?? "").length;
  }
  return 64 + 6 * chars;
}

export interface OutboxDeps {
  send(nodeID: string, deliveries: Delivery[]): Promise<unknown>;
  /** Frames lost to live delivery (clients recover them by gap filling or resume). */
  failed(nodeID: string, frames: number, err: Error): void;
}

/**
 * Calls in flight to one gateway at most. A gateway reads its bus messages in order and handles
 * each in full before the next (its timers wait meanwhile), so calls beyond what it keeps up with
 * would only pile up in its inbound backlog: it would deliver them late and run no timer while it
 * works through them, its bus heartbeats among them. Frames wait here instead.
 */
export const MAX_CALLS_IN_FLIGHT = 4;
/**
 * Frames that wait for one gateway at most (some 10 s of a busy gateway's work, tens of MB here);
 * beyond it the oldest are dropped and reported as failed: clients fill such gaps from history,
 * which costs more than a late frame, so the bound is there for this node's memory.
 */
export const MAX_QUEUED_PER_GATEWAY = 100_000;

interface GatewayQueue {
  deliveries: Delivery[];
  inFlight: number;
  dropped: number;
}

export class DeliveryOutbox {
  private readonly d: OutboxDeps;
  private readonly maxPerCall: number;
  private readonly maxBytesPerCall: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly gateways = new Map<string, GatewayQueue>();
  private scheduled = false;

  constructor(
    deps: OutboxDeps,
    limits: { perCall?: number; bytesPerCall?: number; inFlight?: number; queued?: number } = {},
  ) {
    this.d = deps;
    this.maxPerCall = limits.perCall ?? MAX_DELIVERIES_PER_CALL;
    this.maxBytesPerCall = limits.bytesPerCall ?? MAX_BYTES_PER_CALL;
    this.maxInFlight = limits.inFlight ?? MAX_CALLS_IN_FLIGHT;
    this.maxQueued = limits.queued ?? MAX_QUEUED_PER_GATEWAY;
  }

  add(nodeID: string, delivery: Delivery): void {
    let gateway = this.gateways.get(nodeID);
    if (!gateway) {
      gateway = { deliveries: [], inFlight: 0, dropped: 0 };
      this.gateways.set(nodeID, gateway);
    }
    gateway.deliveries.push(delivery);
    if (gateway.deliveries.length > this.maxQueued) {
      gateway.deliveries.shift();
      gateway.dropped += 1;
    }
    this.schedule();
  }

  /** Sends what is queued, as far as each gateway's calls in flight allow. */
  flush(): void {
    this.scheduled = false;
    for (const [nodeID, gateway] of this.gateways) {
      if (gateway.dropped > 0) {
        this.d.failed(
          nodeID,
          gateway.dropped,
          new Error("the gateway fell behind: its oldest frames were dropped"),
        );
        gateway.dropped = 0;
      }
      while (gateway.inFlight < this.maxInFlight && gateway.deliveries.length > 0)
        this.send(nodeID, gateway, this.takeCall(gateway));
      if (gateway.inFlight === 0 && gateway.deliveries.length === 0) this.gateways.delete(nodeID);
    }
  }

  /** Frames waiting for a gateway's calls in flight to finish. */
  queued(nodeID: string): number {
    return this.gateways.get(nodeID)?.deliveries.length ?? 0;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** The oldest deliveries, up to a call's count and size. */
  private takeCall(gateway: GatewayQueue): Delivery[] {
    let count = 0;
    let bytes = 0;
    for (const delivery of gateway.deliveries) {
      const size = sizeBound(delivery);
      if (count > 0 && (count >= this.maxPerCall || bytes + size > this.maxBytesPerCall)) break;
      count += 1;
      bytes += size;
    }
    return gateway.deliveries.splice(0, count);
  }

  private send(nodeID: string, gateway: GatewayQueue, part: Delivery[]): void {
    gateway.inFlight += 1;
    this.d
      .send(nodeID, part)
      .catch((err: Error) => this.d.failed(nodeID, part.length, err))
      .finally(() => {
        gateway.inFlight -= 1;
        if (gateway.deliveries.length > 0 || gateway.dropped > 0) this.schedule();
        else if (gateway.inFlight === 0 && this.gateways.get(nodeID) === gateway)
          this.gateways.delete(nodeID);
      });
  }
}
