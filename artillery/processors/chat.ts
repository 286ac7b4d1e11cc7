/**
 * The chat scenario: each virtual user is a group of `groupSize` users talking through the
 * platform's own clients (ApiClient for REST, ChatSocket for the WebSocket). The users come from a
 * pool registered in `before` (registration is the auth scenario's business); each member logs in,
 * connects and sends `messagesPerMember` messages; halfway through, one member goes offline while
 * the others go on, then reconnects and resumes from the last seq it saw. Every acknowledged
 * message must reach every member, live or by resume, within `deliveryWaitMs` of the last ack.
 *
 * Metrics: chat.sent (acknowledged messages), chat.delivered (member deliveries), chat.lost
 * (member deliveries missing after the wait), chat.resumed (deliveries to the resumed socket that
 * it missed while offline), chat.unexpected (deliveries of messages never sent); histograms
 * chat.connect_ms (connect until `ready`), chat.ack_ms (send until ack), chat.delivery_ms (send
 * until a connected member has it live; what a member gets by resume is not counted there),
 * chat.resume_ms (reconnect until the resumed member has everything).
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient, expectSession } from "../../client/rest-client.ts";
import { withTimeout } from "../../lib/concurrency.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { numberVar, type PoolUser, pool, registerPool, target, type VuContext, type VuEvents } from "./vu.ts";

const CONNECT_TIMEOUT_MS = 15_000;

interface Member {
  api: ApiClient;
  id: string;
  socket: ChatSocket;
  received: Set<string>;
  /** When the current socket was opened: what was sent before reaches it by resume, not live. */
  since: number;
}

/** before: registers `chatPoolSize` users for the groups to be made of. */
export async function createChatPool(context: VuContext): Promise<void> {
  context.vars.chatPool = await registerPool(target(context), numberVar(context, "chatPoolSize", 50));
}

export async function chatGroup(context: VuContext, events: VuEvents): Promise<void> {
  const url = target(context);
  const size = Math.max(2, numberVar(context, "groupSize", 5));
  const perMember = Math.max(2, numberVar(context, "messagesPerMember", 10));
  const intervalMs = numberVar(context, "sendIntervalMs", 250);
  const waitMs = numberVar(context, "deliveryWaitMs", 10_000);
  const tag = randomBytes(6).toString("hex");
  const sentAt = new Map<string, number>();
  const acked = new Set<string>();
  let unexpected = 0;

  // A pool user may be in other groups at the same time: their messages are not this group's.
  let chatId = "";
  const deliver = (member: Member) => (m: MessageView) => {
    if (m.chatId !== chatId || member.received.has(m.clientMsgId)) return;
    member.received.add(m.clientMsgId);
    const at = sentAt.get(m.clientMsgId);
    if (at === undefined) unexpected += 1;
    else if (at >= member.since) events.emit("histogram", "chat.delivery_ms", Date.now() - at);
  };
  const openSocket = async (member: Member, lastSeenSeq: number, chatId: string) => {
    member.since = Date.now();
    member.socket = new ChatSocket(member.api, {
      minDelayMs: 100,
      maxDelayMs: 2_000,
      onMessage: deliver(member),
    });
    member.socket.track(chatId, lastSeenSeq);
    const started = Date.now();
    await withTimeout(member.socket.connect(), CONNECT_TIMEOUT_MS, "WebSocket connect");
    events.emit("histogram", "chat.connect_ms", Date.now() - started);
  };

  const users = pickDistinct(pool(context, "chatPool"), size);
  const members: Member[] = await Promise.all(
    users.map(async ({ email, password }) => {
      const api = new ApiClient(url);
      const { user } = expectSession(await api.login({ email, password }));
      const socket = undefined as unknown as ChatSocket;
      return { api, id: user.id, socket, received: new Set<string>(), since: 0 };
    }),
  );
  const [owner] = members as [Member, ...Member[]];
  const resumer = members[size - 1] as Member;
  try {
    const chat = await owner.api.request<ChatView>("POST", "/chats", {
      type: "group",
      name: `load ${tag}`,
      memberIds: members.slice(1).map((m) => m.id),
    });
    chatId = chat.id;
    await Promise.all(members.map((m) => openSocket(m, 0, chat.id)));

    // Members do not type in step: each starts its turn at its own offset within the interval.
    const send = async (member: Member, index: number, from: number, to: number) => {
      await sleep((intervalMs * index) / size);
      for (let n = from; n < to; n++) {
        const clientMsgId = `${tag}-${index}-${n}`;
        const started = Date.now();
        sentAt.set(clientMsgId, started);
        await member.socket.send({ chatId: chat.id }, `message ${n} from ${index}`, clientMsgId);
        events.emit("histogram", "chat.ack_ms", Date.now() - started);
        acked.add(clientMsgId);
        await sleep(intervalMs);
      }
    };
    const half = Math.ceil(perMember / 2);
    await Promise.all(members.map((m, i) => send(m, i, 0, half)));

    const lastSeen = resumer.socket.lastSeen(chat.id) ?? 0;
    resumer.socket.close();
    const before = resumer.received.size;
    await Promise.all(members.map((m, i) => (m === resumer ? undefined : send(m, i, half, perMember))));
    const reconnected = Date.now();
    await openSocket(resumer, lastSeen, chat.id);

    const deadline = Date.now() + waitMs;
    const complete = (m: Member) => [...acked].every((id) => m.received.has(id));
    let resumed = false;
    while (Date.now() < deadline) {
      if (!resumed && complete(resumer)) {
        resumed = true;
        events.emit("histogram", "chat.resume_ms", Date.now() - reconnected);
      }
      if (members.every(complete)) break;
      await sleep(50);
    }

    let delivered = 0;
    let lost = 0;
    for (const m of members) {
      for (const id of acked) {
        if (m.received.has(id)) delivered += 1;
        else lost += 1;
      }
    }
    events.emit("counter", "chat.sent", acked.size);
    events.emit("counter", "chat.delivered", delivered);
    events.emit("counter", "chat.lost", lost);
    events.emit("counter", "chat.resumed", resumer.received.size - before);
    events.emit("counter", "chat.unexpected", unexpected);
  } finally {
    for (const m of members) m.socket?.close();
  }
}

function pickDistinct(users: PoolUser[], count: number): PoolUser[] {
  if (users.length < count) throw new Error(`the pool has ${users.length} users, a group needs ${count}`);
  const rest = [...users];
  return Array.from(
    { length: count },
    () => rest.splice(Math.floor(Math.random() * rest.length), 1)[0] as PoolUser,
  );
}
