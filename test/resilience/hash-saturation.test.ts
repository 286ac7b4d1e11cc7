/**
 * Password hashing saturates the CPU: a burst of registrations and logins against an auth node
 * (a process of its own) while other clients read profiles and chat. The admission gate
 * (HASH_CONCURRENCY hashes at once per node, a wait of at most HASH_MAX_WAIT_MS foreseen, 503 with
 * Retry-After beyond) keeps the hashing bounded, so profile reads and chat delivery keep answering.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { NodeFleet } from "../support/node-fleet.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { loop, report, Tally } from "../support/traffic.ts";

const REQUEST_TIMEOUT_MS = 10_000;
const BURST = 60;

let servers: Servers;
let cluster: TestCluster;
let fleet: NodeFleet;
let gateway: string;

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, { REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
  fleet = new NodeFleet(cluster);
  await fleet.start("auth-p", ["auth"], { env: { HASH_CONCURRENCY: "2", HASH_MAX_WAIT_MS: "200" } });
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  gateway = (await cluster.add("gateway-1", ["gateway"])).url;
  await waitReady(gateway, 60_000);
});

after(async () => {
  await fleet?.killAll();
  await cluster?.stop();
  await servers?.stop();
});

test("a burst of password hashing leaves profile reads and chat delivery answering", {
  timeout: 110_000,
}, async () => {
  const a = new ApiClient(gateway);
  const b = new ApiClient(gateway);
  await a.register(newUser("ha"));
  const bId = (await b.register(newUser("hb"))).user.id;
  const chat = await a.request<ChatView>("POST", "/chats", { type: "direct", userId: bId });
  const delivered: number[] = [];
  const sentAt = new Map<string, number>();
  const receiver = new ChatSocket(b, {
    onMessage: (m) => {
      const at = sentAt.get(m.clientMsgId);
      if (at !== undefined) delivered.push(Date.now() - at);
    },
  });
  receiver.track(chat.id, 0);
  const sender = new ChatSocket(a);
  await Promise.all([receiver.connect(), sender.connect()]);

  const hashing = new Tally("registrations and logins (burst)", 60_000);
  const reads = new Tally("profile reads during the burst", 60_000);
  const readers = loop(2, () => reads.run(() => a.raw("GET", `/users/${bId}`)), 50);
  let acked = 0;
  const chatting = loop(
    1,
    async (_w, i) => {
      const id = `h${i}`;
      sentAt.set(id, Date.now());
      await sender.send({ chatId: chat.id }, `during the burst ${i}`, id);
      acked += 1;
    },
    100,
  );
  const known = newUser("hk");
  await new ApiClient(gateway).register(known);
  const burst = await Promise.all(
    Array.from({ length: BURST }, (_, i) =>
      hashing.run(() =>
        i % 2
          ? new ApiClient(gateway).raw("POST", "/auth/register", { body: newUser(`hr${i}`) })
          : new ApiClient(gateway).raw("POST", "/auth/login", {
              body: { username: known.username, password: known.password },
            }),
      ),
    ),
  );
  await readers.stop();
  await chatting.stop();
  await receiver.catchUp();
  sender.close();
  receiver.close();
  const sorted = [...delivered].sort((x, y) => x - y);
  report(hashing.summary());
  report(reads.summary());
  report(
    `chat during the burst: ${acked} acknowledged, ${delivered.length} delivered live, delivery latency ` +
      `p50 ${sorted[Math.floor(sorted.length / 2)] ?? 0} ms, max ${sorted.at(-1) ?? 0} ms`,
  );

  for (const s of burst)
    assert.ok([200, 201, 503].includes(s), `hashing answers 200/201 or 503 (shed), got ${s}`);
  assert.ok(
    burst.some((s) => s === 200 || s === 201),
    "some hashing work got through",
  );
  assert.deepEqual(reads.statuses(), { "200": reads.outcomes.length }, "every profile read answered 200");
  assert.ok(reads.outcomes.length > 0);
  assert.ok(acked > 0 && delivered.length > 0, "chat messages were acknowledged and delivered");
  assert.ok(reads.slowestMs() < REQUEST_TIMEOUT_MS, "no read timed out");
});
