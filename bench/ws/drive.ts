/**
 * One paced run: `rate` messages per second for `durationS`, each from a random connected user to
 * their group chat, sent with the socket's send (which resolves on the `ack`, or on Centrifugo's
 * publish reply). Every new_message (or Centrifugo publication push) a
 * socket receives is matched to its send by clientMsgId; for every acknowledged message the run
 * counts how many of the other connected members received it, and when (same process clock).
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { MessageView } from "../../lib/contracts.ts";
import type { Client } from "./clients.ts";

/** Characters of every message body (the same on the platform and the bare baseline). */
export const MESSAGE_CHARS = 64;
/** After the last send, how long the run waits for outstanding acks and deliveries. */
export const DRAIN_MS = 10_000;
/**
 * A run keeps up when, over the second half of its window, it delivers at least this share of
 * what it owes: with a bounded latency the second half delivers what it owes (shifted by that
 * latency); with a growing backlog it delivers less.
 */
export const KEEP_UP_SHARE = 0.95;

export interface DriveResult {
  rate: number;
  durationS: number;
  sent: number;
  acked: number;
  /** Sends answered with a non-retryable error frame. */
  rejected: number;
  firstRejection?: string;
  /** Sends neither acknowledged nor rejected by the end of the drain. */
  unacked: number;
  /** Deliveries owed: for each acknowledged message, its other connected members. */
  expected: number;
  received: number;
  /** Deliveries owed that did not arrive within DRAIN_MS of the last send. */
  lost: number;
  deliveryRatio: number;
  latencyP50: number;
  latencyP99: number;
  latencyMax: number;
  /** Deliveries (new_message to another member) received per second within the send window. */
  deliveredPerS: number;
  /** The same over the second half of the window only (keptUp judges this one). */
  deliveredPerSLateHalf: number;
  /** What the offered rate owes per second: rate x other members per group. */
  offeredDeliveriesPerS: number;
  ackedPerS: number;
  /** The longest the pacer's timer was late: this process's event loop stalls. */
  pacerMaxLateMs: number;
  drainS: number;
}

interface Sent {
  sentAt: number;
  senderId: string;
  owed: number;
  received: number;
  acked: boolean;
}

/** What a delivery tells the run: which send it is, and who sent it. */
type Delivered = Pick<MessageView, "clientMsgId" | "senderId">;

/** The run that matches received messages now; deliveries of older runs are ignored. */
let current: Run | undefined;

export function onMessage(userId: string, m: Delivered): void {
  current?.receive(userId, m);
}

class Run {
  readonly messages = new Map<string, Sent>();
  readonly latencies: number[] = [];
  windowEnd = Number.POSITIVE_INFINITY;
  halfWay = Number.POSITIVE_INFINITY;
  inWindow = 0;
  inLateHalf = 0;

  receive(userId: string, m: Delivered): void {
    const sent = this.messages.get(m.clientMsgId);
    if (!sent || m.senderId === userId) return;
    const now = performance.now();
    sent.received += 1;
    this.latencies.push(now - sent.sentAt);
    if (now > this.windowEnd) return;
    this.inWindow += 1;
    if (now >= this.halfWay) this.inLateHalf += 1;
  }
}

function body(n: number): string {
  return `bench message ${n} `.padEnd(MESSAGE_CHARS, "x");
}

export async function drive(clients: Client[], rate: number, durationS: number): Promise<DriveResult> {
  const membersOnline = new Map<string, number>();
  for (const c of clients) membersOnline.set(c.user.chatId, (membersOnline.get(c.user.chatId) ?? 0) + 1);
  const run = new Run();
  current = run;
  let sent = 0;
  let acked = 0;
  let rejected = 0;
  let settled = 0;
  let firstRejection: string | undefined;
  let pacerMaxLateMs = 0;
  const sendOne = () => {
    const client = clients[Math.floor(Math.random() * clients.length)] as Client;
    const clientMsgId = randomUUID();
    const record: Sent = {
      sentAt: performance.now(),
      senderId: client.user.id,
      owed: (membersOnline.get(client.user.chatId) ?? 1) - 1,
      received: 0,
      acked: false,
    };
    run.messages.set(clientMsgId, record);
    sent += 1;
    client.socket.send({ chatId: client.user.chatId }, body(sent), clientMsgId).then(
      () => {
        record.acked = true;
        acked += 1;
        settled += 1;
      },
      (err: Error & { code?: string }) => {
        rejected += 1;
        settled += 1;
        firstRejection ??= `${err.code ?? "ERROR"}: ${err.message}`;
      },
    );
  };

  const start = performance.now();
  const end = start + durationS * 1000;
  run.windowEnd = end;
  run.halfWay = start + (durationS * 1000) / 2;
  let lastTick = start;
  for (let now = start; now < end; now = performance.now()) {
    pacerMaxLateMs = Math.max(pacerMaxLateMs, now - lastTick - 1);
    lastTick = now;
    const due = Math.floor(((now - start) * rate) / 1000);
    while (sent < due) sendOne();
    await sleep(1);
  }
  const drainStart = performance.now();
  const owedNow = () => {
    let owed = 0;
    for (const m of run.messages.values()) if (m.acked) owed += Math.max(0, m.owed - m.received);
    return owed;
  };
  while (performance.now() - drainStart < DRAIN_MS && (settled < sent || owedNow() > 0)) await sleep(50);
  const drainS = (performance.now() - drainStart) / 1000;
  current = undefined;

  let expected = 0;
  let received = 0;
  for (const m of run.messages.values()) {
    if (!m.acked) continue;
    expected += m.owed;
    received += Math.min(m.owed, m.received);
  }
  const latencies = Float64Array.from(run.latencies).sort();
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
  const owedPerMessage = clients.length
    ? [...membersOnline.values()].reduce((sum, n) => sum + n * (n - 1), 0) / clients.length
    : 0;
  return {
    rate,
    durationS,
    sent,
    acked,
    rejected,
    ...(firstRejection ? { firstRejection } : {}),
    unacked: sent - settled,
    expected,
    received,
    lost: expected - received,
    deliveryRatio: expected > 0 ? received / expected : Number.NaN,
    latencyP50: at(0.5) ?? Number.NaN,
    latencyP99: at(0.99) ?? Number.NaN,
    latencyMax: latencies.at(-1) ?? Number.NaN,
    deliveredPerS: run.inWindow / durationS,
    deliveredPerSLateHalf: run.inLateHalf / (durationS / 2),
    offeredDeliveriesPerS: rate * owedPerMessage,
    ackedPerS: acked / durationS,
    pacerMaxLateMs,
    drainS,
  };
}

/** No loss, no refusal, every send settled, and the deliveries kept pace with the offered rate. */
export function keptUp(r: DriveResult): boolean {
  return (
    r.lost === 0 &&
    r.rejected === 0 &&
    r.unacked === 0 &&
    r.deliveredPerSLateHalf >= KEEP_UP_SHARE * r.offeredDeliveriesPerS
  );
}

export function describeDrive(r: DriveResult): string {
  const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0));
  return [
    `${r.rate}/s offered: ${r.sent} sent, ${r.acked} acked, ${r.rejected} refused, ${r.unacked} unacked`,
    `${r.received}/${r.expected} delivered (${r.lost} lost)`,
    `${Math.round(r.deliveredPerS)} deliveries/s (second half ${Math.round(r.deliveredPerSLateHalf)}) of ${Math.round(r.offeredDeliveriesPerS)} owed`,
    `latency p50 ${ms(r.latencyP50)} ms p99 ${ms(r.latencyP99)} ms max ${ms(r.latencyMax)} ms`,
    `pacer late ${ms(r.pacerMaxLateMs)} ms, drain ${r.drainS.toFixed(1)} s`,
  ].join("; ");
}
