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
  /** A call failed: its frames are lost to live delivery (clients recover them by resume). */
  failed(nodeID: string, frames: number, err: Error): void;
}

export class DeliveryOutbox {
  private readonly d: OutboxDeps;
  private readonly maxPerCall: number;
  private readonly maxBytesPerCall: number;
  private readonly pending = new Map<string, Delivery[]>();
  private scheduled = false;

  constructor(deps: OutboxDeps, maxPerCall = MAX_DELIVERIES_PER_CALL, maxBytesPerCall = MAX_BYTES_PER_CALL) {
    this.d = deps;
    this.maxPerCall = maxPerCall;
    this.maxBytesPerCall = maxBytesPerCall;
  }

  add(nodeID: string, delivery: Delivery): void {
    const queued = this.pending.get(nodeID);
    if (queued) queued.push(delivery);
    else this.pending.set(nodeID, [delivery]);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends everything queued now. */
  flush(): void {
    this.scheduled = false;
    for (const [nodeID, deliveries] of this.pending) {
      let part: Delivery[] = [];
      let bytes = 0;
      for (const delivery of deliveries) {
        const size = sizeBound(delivery);
        if (part.length > 0 && (part.length >= this.maxPerCall || bytes + size > this.maxBytesPerCall)) {
          this.send(nodeID, part);
          part = [];
          bytes = 0;
        }
        part.push(delivery);
        bytes += size;
      }
      if (part.length > 0) this.send(nodeID, part);
    }
    this.pending.clear();
  }

  private send(nodeID: string, part: Delivery[]): void {
    this.d.send(nodeID, part).catch((err: Error) => this.d.failed(nodeID, part.length, err));
  }
}
