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

/** Deliveries in one call at most (a bus message stays well under NATS's 1 MB payload limit). */
export const MAX_DELIVERIES_PER_CALL = 200;

export interface OutboxDeps {
  send(nodeID: string, deliveries: Delivery[]): Promise<unknown>;
  /** A call failed: its frames are lost to live delivery (clients recover them by resume). */
  failed(nodeID: string, frames: number, err: Error): void;
}

export class DeliveryOutbox {
  private readonly d: OutboxDeps;
  private readonly maxPerCall: number;
  private readonly pending = new Map<string, Delivery[]>();
  private scheduled = false;

  constructor(deps: OutboxDeps, maxPerCall = MAX_DELIVERIES_PER_CALL) {
    this.d = deps;
    this.maxPerCall = maxPerCall;
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
      for (let i = 0; i < deliveries.length; i += this.maxPerCall) {
        const part = deliveries.slice(i, i + this.maxPerCall);
        this.d.send(nodeID, part).catch((err: Error) => this.d.failed(nodeID, part.length, err));
      }
    }
    this.pending.clear();
  }
}
