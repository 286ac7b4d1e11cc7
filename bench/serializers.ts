/**
 * `npx node bench/serializers.ts [--ms N] [--rounds N]`: Moleculer's serializers on the packets
 * the platform sends most, in one process, in the same run: JSON (the default), CBOR (cbor-x),
 * Notepack (notepack.io) and MsgPack (msgpack5). For each packet: bytes on the wire, and encode +
 * decode round trips per second (median of the rounds, each `ms` long, the serializers taking
 * turns so a slow moment of the machine is shared out). JSON is the baseline of the ratios.
 *
 * The packets are those of a chat message's path through the cluster, with the fields Moleculer's
 * transit puts in them: the gateway's REQ to `chat.send`, the chat node's REQ to
 * `gateway.deliverMany` (a message and its read frame for ten members) and its RES, and a `profile.get` RES.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { Serializers } from "moleculer";
import { median } from "./figures.ts";

export const SERIALIZERS = ["JSON", "CBOR", "Notepack", "MsgPack"] as const;
export type SerializerName = (typeof SERIALIZERS)[number];

type Packet = { name: string; type: string; payload: Record<string, unknown> };

function packets(): Packet[] {
  const now = new Date().toISOString();
  const userIds = Array.from({ length: 10 }, () => randomUUID());
  const meta = {
    user: { id: userIds[0], sessionId: randomUUID() },
    requestId: randomUUID(),
    ip: "127.0.0.1",
  };
  const base = (action: string) => ({
    ver: "5",
    sender: `bench-gateway-${process.pid}`,
    id: randomUUID(),
    action,
    timeout: 10_000,
    level: 1,
    tracing: null,
    parentID: null,
    requestID: randomUUID(),
    caller: null,
    stream: false,
    seq: 0,
  });
  const message = {
    id: randomUUID(),
    chatId: randomUUID(),
    seq: 12_345,
    senderId: userIds[0],
    message: "x".repeat(100),
    clientMsgId: randomUUID(),
    createdAt: now,
    reactions: [],
    mentions: [],
    attachments: [],
  };
  return [
    {
      name: "REQ chat.send (gateway -> chat)",
      type: "REQ",
      payload: {
        ...base("chat.send"),
        params: { chatId: message.chatId, message: message.message, clientMsgId: message.clientMsgId },
        meta,
      },
    },
    {
      name: "REQ gateway.deliverMany (chat -> gateway: a message and its read frame, 10 members)",
      type: "REQ",
      payload: {
        ...base("gateway.deliverMany"),
        params: {
          deliveries: [
            { userIds, frame: { type: "new_message", ...message } },
            {
              userIds,
              frame: { type: "read", chatId: message.chatId, userId: message.senderId, seq: message.seq },
            },
          ],
        },
        meta: {},
      },
    },
    {
      name: "RES gateway.deliverMany",
      type: "RES",
      payload: {
        ver: "5",
        sender: "bench-chat",
        id: randomUUID(),
        success: true,
        data: { delivered: 10 },
        meta: {},
      },
    },
    {
      name: "RES profile.get",
      type: "RES",
      payload: {
        ver: "5",
        sender: "bench-profile",
        id: randomUUID(),
        success: true,
        data: {
          id: randomUUID(),
          username: "someone_42",
          displayName: "Some One",
          bio: "A few words about me.",
          avatarUrl: null,
          createdAt: now,
          updatedAt: now,
        },
        meta: {},
      },
    },
  ];
}

interface Codec {
  serialize(obj: unknown, type: string): Buffer;
  deserialize(buf: Buffer, type: string): unknown;
}

function codec(name: SerializerName): Codec {
  const Ctor = (Serializers as unknown as Record<string, new () => Codec & { init(b: unknown): void }>)[name];
  if (!Ctor) throw new Error(`Moleculer has no ${name} serializer`);
  const serializer = new Ctor();
  const broker = {
    getLogger: () => ({ info() {}, warn() {}, error() {}, debug() {} }),
    fatal: (msg: string, err: unknown) => {
      throw new Error(`${msg}: ${String(err)}`);
    },
  };
  serializer.init(broker);
  return serializer;
}

/** Round trips per second of one codec on one packet, for `ms` milliseconds. */
function roundTrips(c: Codec, packet: Packet, ms: number): number {
  let n = 0;
  const started = performance.now();
  let now = started;
  while (now - started < ms) {
    for (let i = 0; i < 200; i++) {
      // A copy each time: the serializers may move fields (params, data) into their transport form.
      const buf = c.serialize({ ...packet.payload }, packet.type);
      c.deserialize(buf, packet.type);
    }
    n += 200;
    now = performance.now();
  }
  return (n * 1000) / (now - started);
}

export interface SerializerRow {
  packet: string;
  serializer: SerializerName;
  bytes: number;
  perSecond: number;
  ratio: number;
  runs: number[];
}

export function measureSerializers(options: { ms: number; rounds: number }): SerializerRow[] {
  const codecs = new Map(SERIALIZERS.map((name) => [name, codec(name)]));
  const rows: SerializerRow[] = [];
  for (const packet of packets()) {
    const runs = new Map<SerializerName, number[]>(SERIALIZERS.map((n) => [n, []]));
    for (const [, c] of codecs) roundTrips(c, packet, 100); // warm-up
    for (let r = 0; r < options.rounds; r++) {
      for (const [name, c] of codecs) runs.get(name)?.push(roundTrips(c, packet, options.ms));
    }
    const json = median([...(runs.get("JSON") ?? [])].sort((a, b) => a - b));
    for (const [name, c] of codecs) {
      const own = [...(runs.get(name) ?? [])].sort((a, b) => a - b);
      const bytes = c.serialize({ ...packet.payload }, packet.type).length;
      const perSecond = median(own);
      rows.push({
        packet: packet.name,
        serializer: name,
        bytes,
        perSecond,
        ratio: perSecond / json,
        runs: own,
      });
    }
  }
  return rows;
}

export function serializerTable(rows: SerializerRow[]): string {
  const head = ["packet", "serializer", "bytes", "round trips/s (median)", "ratio to JSON", "spread"];
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(head),
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) =>
      line([
        r.packet,
        r.serializer,
        String(r.bytes),
        Math.round(r.perSecond).toLocaleString("en-US"),
        r.ratio.toFixed(2),
        `${Math.round(r.runs[0] ?? 0).toLocaleString("en-US")}-${Math.round(r.runs.at(-1) ?? 0).toLocaleString("en-US")}`,
      ]),
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { ms: { type: "string", default: "300" }, rounds: { type: "string", default: "5" } },
  });
  const rows = measureSerializers({ ms: Number(values.ms), rounds: Number(values.rounds) });
  process.stdout.write(`${serializerTable(rows)}\n`);
}
