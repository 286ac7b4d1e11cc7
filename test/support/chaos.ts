/**
 * What the chaos runs share: the cluster they strike (auth, profile, two chat nodes and two
 * gateways, each a process of its own), clients in groups that send over ChatSocket, and the
 * Jepsen-style accounting of what every member received against what was acknowledged. Every acknowledged
 * message must reach every member of its chat; nothing may arrive that was never sent; each
 * member's seqs run 1, 2, 3... with no gap and no duplicate.
 */
import assert from "node:assert/strict";
import { type Ack, ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { freePort } from "../harness/servers.ts";
import { NodeProcess } from "./node-process.ts";
import { newUser, waitReady } from "./platform.ts";

export interface ChaosClient {
  api: ApiClient;
  id: string;
  socket: ChatSocket;
  chatId: string;
  received: MessageView[];
  acked: Ack[];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Settings of every node in a chaos run, under the run's own (servers, namespace, its limits):
 * the clients send at a script's rate, which the per-user limits are not there to stop, and a
 * resume replays at most 5 messages per chat, so the clients of a killed gateway miss more than
 * that per chat while it is down and page the rest from the history.
 */
const CHAOS_ENV: Record<string, string> = {
  METRICS_ENABLED: "false",
  RATE_LIMIT_REGISTER_IP: "100000/60",
  RATE_LIMIT_LOGIN_IP: "100000/60",
  WS_RATE_LIMIT: "1000/1",
  RATE_LIMIT_SEND_USER: "1000000/60",
  WS_RESUME_MAX_MESSAGES: "5",
  REQUEST_TIMEOUT_MS: "5000",
};

export interface ChaosCluster {
  /** auth-1, profile-1, chat-1, chat-2, gw-1, gw-2, in that order. */
  nodes: NodeProcess[];
  gatewayUrls: string[];
  node(id: string): NodeProcess;
  /** Kills every node with SIGKILL. */
  kill(): Promise<void>;
}

/**
 * Starts the nodes of a chaos run, each a process with `env` over CHAOS_ENV, and waits until both
 * gateways are ready. On a failure the nodes already started are killed.
 */
export async function startChaosCluster(env: Record<string, string>): Promise<ChaosCluster> {
  const nodes: NodeProcess[] = [];
  const gatewayUrls: string[] = [];
  const kill = async () => {
    await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
  };
  const start = async (id: string, services: string[], extra: Record<string, string> = {}) => {
    const node = new NodeProcess(id, services, { ...CHAOS_ENV, ...env, ...extra });
    nodes.push(node);
    await node.start();
  };
  try {
    await start("auth-1", ["auth"]);
    await start("profile-1", ["profile"]);
    await start("chat-1", ["chat"]);
    await start("chat-2", ["chat"]);
    for (const id of ["gw-1", "gw-2"]) {
      const port = await freePort();
      await start(id, ["gateway"], { PORT: String(port), HOST: "127.0.0.1" });
      gatewayUrls.push(`http://127.0.0.1:${port}`);
    }
    await Promise.all(gatewayUrls.map((u) => waitReady(u, 60_000)));
  } catch (err) {
    await kill();
    throw err;
  }
  const node = (id: string) => {
    const found = nodes.find((n) => n.nodeId === id);
    if (!found) throw new Error(`no chaos node ${id}`);
    return found;
  };
  return { nodes, gatewayUrls, node, kill };
}

/** Progress lines with the time since `began`, so a slow phase shows in CI logs. */
export function progressLog(began = Date.now()): (line: string) => void {
  return (line) => process.stdout.write(`chaos: ${((Date.now() - began) / 1000).toFixed(1)} s ${line}\n`);
}

/**
 * Registers `count` users through the gateways in turn, makes a group chat of each `groupSize`
 * of them, and connects each one's ChatSocket tracking its chat.
 */
export async function groupClients(
  gatewayUrls: string[],
  count: number,
  groupSize: number,
): Promise<ChaosClient[]> {
  const clients: ChaosClient[] = [];
  for (let i = 0; i < count; i++) {
    const api = new ApiClient(gatewayUrls[i % gatewayUrls.length] as string);
    const id = (await api.register(newUser(`c${i}`))).user.id;
    const received: MessageView[] = [];
    const socket = new ChatSocket(api, {
      minDelayMs: 100,
      maxDelayMs: 1_000,
      onMessage: (m) => received.push(m),
    });
    clients.push({ api, id, socket, chatId: "", received, acked: [] });
  }
  for (let g = 0; g < count / groupSize; g++) {
    const members = clients.slice(g * groupSize, (g + 1) * groupSize);
    const chat = await (members[0] as ChaosClient).api.request<ChatView>("POST", "/chats", {
      type: "group",
      name: `g${g}`,
      memberIds: members.slice(1).map((m) => m.id),
    });
    for (const m of members) m.chatId = chat.id;
  }
  for (const c of clients) {
    c.socket.track(c.chatId, 0);
    await c.socket.connect();
  }
  return clients;
}

/** Each client sends `perClient` messages to its chat, one at a time, pausing between them. */
export function sendAll(
  clients: ChaosClient[],
  perClient: number,
  pauseMs: number,
): { sent: Set<string>; done: Promise<void>; acked(): number } {
  const sent = new Set<string>();
  const done = Promise.all(
    clients.map(async (c, i) => {
      for (let n = 0; n < perClient; n++) {
        const clientMsgId = `c${i}-m${n}`;
        sent.add(clientMsgId);
        c.acked.push(await c.socket.send({ chatId: c.chatId }, `hello ${n} from ${i}`, clientMsgId));
        await sleep(pauseMs);
      }
    }),
  ).then(() => undefined);
  return { sent, done, acked: () => clients.reduce((n, c) => n + c.acked.length, 0) };
}

export interface Accounting {
  sent: number;
  acknowledged: number;
  lost: number;
  unexpected: number;
  gaps: number;
  duplicates: number;
}

/** Counts what each member received against what was acknowledged in its chat. */
export function account(clients: ChaosClient[], sent: Set<string>): Accounting {
  const ackedIds = new Map<string, string>();
  for (const c of clients) for (const a of c.acked) ackedIds.set(a.clientMsgId, c.chatId);
  let lost = 0;
  let unexpected = 0;
  let gaps = 0;
  let duplicates = 0;
  for (const c of clients) {
    const got = new Set(c.received.map((m) => m.clientMsgId));
    for (const [id, chatId] of ackedIds) if (chatId === c.chatId && !got.has(id)) lost += 1;
    for (const m of c.received) if (!sent.has(m.clientMsgId)) unexpected += 1;
    const seqs = c.received.map((m) => m.seq);
    for (let i = 0; i < seqs.length; i++) {
      if (seqs[i] !== i + 1) seqs.indexOf(seqs[i] as number) !== i ? duplicates++ : gaps++;
    }
  }
  return { sent: sent.size, acknowledged: ackedIds.size, lost, unexpected, gaps, duplicates };
}

/** Prints the accounting as one `chaos:` line and asserts it is clean. */
export function assertClean(result: Accounting, expectedAcks: number): void {
  process.stdout.write(
    `chaos: sent ${result.sent}, acknowledged ${result.acknowledged}, lost ${result.lost}, ` +
      `unexpected ${result.unexpected}, seq gaps ${result.gaps}, seq duplicates ${result.duplicates}\n`,
  );
  assert.equal(result.acknowledged, expectedAcks, "every send was eventually acknowledged");
  assert.equal(result.lost, 0);
  assert.equal(result.unexpected, 0);
  assert.equal(result.gaps, 0);
  assert.equal(result.duplicates, 0);
}
