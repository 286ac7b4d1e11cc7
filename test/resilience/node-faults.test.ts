/**
 * Nodes that die, leave and join under traffic. Profile nodes and one gateway run as processes of
 * their own (moleculer-runner), so they can be killed with SIGKILL or stopped with SIGTERM; auth,
 * chat and the gateway the REST traffic goes through run in the test process on the same NATS.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Ack, ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient, ApiError } from "../../client/rest-client.ts";
import type { ChatView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { NodeFleet } from "../support/node-fleet.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { loop, report, sleep, Tally, waitFor } from "../support/traffic.ts";
import { wsTap } from "../support/ws-tap.ts";

const REQUEST_TIMEOUT_MS = 3_000;
const WORKERS = 6;

let servers: Servers;
let cluster: TestCluster;
let fleet: NodeFleet;
let gateway: string;
const users: { api: ApiClient; id: string }[] = [];

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, {
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    CIRCUIT_BREAKER_WINDOW_S: "5",
    CIRCUIT_BREAKER_MIN_REQUESTS: "5",
  });
  fleet = new NodeFleet(cluster);
  await Promise.all([fleet.start("profile-p1", ["profile"]), fleet.start("profile-p2", ["profile"])]);
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("chat-1", ["chat"]);
  gateway = (await cluster.add("gateway-1", ["gateway"])).url;
  await waitReady(gateway, 60_000);
  for (let i = 0; i < WORKERS; i++) {
    const api = new ApiClient(gateway);
    users.push({ api, id: (await api.register(newUser(`n${i}`))).user.id });
  }
});

after(async () => {
  await fleet?.killAll();
  await cluster?.stop();
  await servers?.stop();
});

/** Profile reads by every user, of every other user, until stopped. */
function readProfiles(tally: Tally) {
  return loop(WORKERS, (w, i) => {
    const api = (users[w] as { api: ApiClient }).api;
    const other = users[(w + i) % users.length] as { id: string };
    return tally.run(() => api.raw("GET", `/users/${other.id}`));
  });
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const available = (nodeId: string) =>
  cluster.node("gateway-1").broker.registry.nodes.get(nodeId)?.available === true;

test("a node killed with SIGKILL mid-request costs 503s, never a hang, and its peers take over", {
  timeout: 90_000,
}, async () => {
  const reads = new Tally("SIGKILL of profile-p1, GET /users/:id", 30_000);
  const traffic = readProfiles(reads);
  let killedAt = 0;
  try {
    await sleep(2_000);
    killedAt = reads.now();
    await fleet.get("profile-p1").process.kill("SIGKILL");
    await waitFor("the gateway dropped profile-p1", () => !available("profile-p1"), 30_000);
    const droppedAt = reads.now();
    report(
      `profile-p1 left the gateway's registry ${droppedAt - killedAt} ms after SIGKILL (heartbeat timeout)`,
    );
    await sleep(4_000);
  } finally {
    await traffic.stop();
  }
  const healed = reads.recoveredAt(killedAt);
  report(reads.summary(reads.between(0, killedAt), "before"));
  report(reads.summary(reads.between(killedAt), "after SIGKILL"));
  report(`all 200 again from ${healed === undefined ? "never" : `${healed - killedAt} ms after SIGKILL`}`);

  for (const o of reads.outcomes)
    assert.ok([200, 503].includes(o.status), `200 or 503 only, got ${o.status}`);
  assert.ok(
    reads.slowestMs() <= REQUEST_TIMEOUT_MS + 1_500,
    `no request outlived the request timeout: slowest ${reads.slowestMs()} ms`,
  );
  assert.ok(healed !== undefined, "requests succeed again on the surviving node");
  const tail = reads.between(reads.now() - 3_000);
  assert.ok(tail.length > 0 && tail.every((o) => o.status === 200), "the last seconds were all 200");
});

test("a node added under load takes traffic within seconds; one stopped with SIGTERM costs no request", {
  timeout: 90_000,
}, async () => {
  const reads = new Tally("scale out to profile-p3, then SIGTERM profile-p2, GET /users/:id", 30_000);
  const traffic = readProfiles(reads);
  let joinedAt = 0;
  let termAt = 0;
  try {
    await sleep(1_000);
    const startAt = reads.now();
    await fleet.start("profile-p3", ["profile"]);
    joinedAt = reads.now();
    const servingIn = await waitFor(
      "profile-p3 served a read",
      async () => (await fleet.served("profile-p3", "profile.get")) > 0,
      30_000,
    );
    report(
      `profile-p3: process start to broker started ${joinedAt - startAt} ms; first read served ${servingIn} ms later`,
    );
    await sleep(2_000);
    termAt = reads.now();
    const stopping = fleet.get("profile-p2").process.stop();
    const leftIn = await waitFor(
      "the gateway dropped profile-p2",
      () => !available("profile-p2"),
      30_000,
      20,
    );
    await stopping;
    report(
      `profile-p2 left the gateway's registry ${leftIn} ms after SIGTERM; process exited ${reads.now() - termAt} ms after it`,
    );
    await sleep(3_000);
  } finally {
    await traffic.stop();
  }
  report(reads.summary(reads.between(0, joinedAt), "before p3 joined"));
  report(reads.summary(reads.between(joinedAt, termAt), "p3 joined"));
  report(reads.summary(reads.between(termAt), "after SIGTERM of p2"));
  const p3 = await fleet.served("profile-p3", "profile.get");
  report(`profile-p3 served ${p3} reads`);
  assert.deepEqual(reads.statuses(), { "200": reads.outcomes.length }, "every read succeeded");
  assert.ok(p3 > 0);
});

test("a gateway stopped with SIGTERM finishes in-flight requests, closes sockets with 1001, and clients lose nothing", {
  timeout: 100_000,
}, async () => {
  const gw = await fleet.start("gateway-p", ["gateway"]);
  await waitReady(gw.url, 60_000);
  const port = Number(new URL(gw.url).port);
  const clients: ApiClient[] = [];
  for (let i = 0; i < 4; i++) {
    const api = new ApiClient(gw.url);
    await api.register(newUser(`g${i}`));
    clients.push(api);
  }
  // Clients that retry reads as the client library does, with a budget that outlasts this
  // gateway's restart (behind a load balancer the retry would reach another gateway at once).
  const patient: ApiClient[] = [];
  for (let i = 0; i < 2; i++) {
    const api = new ApiClient(gw.url, { retry: { attempts: 15, minDelayMs: 100, maxDelayMs: 2_000 } });
    await api.register(newUser(`gr${i}`));
    patient.push(api);
  }
  const [owner, ...members] = clients as [ApiClient, ...ApiClient[]];
  const memberIds = await Promise.all(members.map(async (m) => (await m.me()).id));
  const chat = await owner.request<ChatView>("POST", "/chats", { type: "group", name: "drain", memberIds });
  const tap = wsTap();
  const received = new Map<ApiClient, Set<string>>();
  const sockets = clients.map((api) => {
    const got = new Set<string>();
    received.set(api, got);
    const socket = new ChatSocket(api, {
      minDelayMs: 200,
      maxDelayMs: 1_000,
      ackTimeoutMs: 3_000,
      WebSocketImpl: tap.WebSocketImpl,
      onMessage: (m) => got.add(m.clientMsgId),
    });
    socket.track(chat.id, 0);
    return socket;
  });
  for (const s of sockets) await s.connect();

  const reads = new Tally("SIGTERM of gateway-p, REST on gateway-p", 30_000);
  const acks: Ack[] = [];
  const failedSends: string[] = [];
  let sent = 0;
  const rest = loop(4, (w) =>
    reads.run(() => (clients[w] as ApiClient).raw("GET", `/chats/${chat.id}/messages?limit=20`)),
  );
  const retried = new Tally("SIGTERM of gateway-p, retrying reads on gateway-p", 30_000);
  const retrying = loop(2, (w) =>
    retried.run(() =>
      (patient[w] as ApiClient).request("GET", "/users/me").then(
        () => 200,
        (err: unknown) => (err instanceof ApiError ? err.status : 0),
      ),
    ),
  );
  const chatting = loop(
    4,
    async (w, i) => {
      const id = `d${w}-${i}`;
      sent += 1;
      await (sockets[w] as ChatSocket).send({ chatId: chat.id }, `hello ${i}`, id).then(
        (ack) => acks.push(ack),
        () => failedSends.push(id),
      );
    },
    50,
  );
  let termAt = 0;
  let backAt = 0;
  let exitedAt = 0;
  try {
    await sleep(2_000);
    termAt = reads.now();
    // SIGTERM, and time to finish as an orchestrator would give it (NodeProcess.stop SIGKILLs
    // after 15 s, which would cut the drain short and the closing handshakes with it).
    process.kill(gw.process.pid as number, "SIGTERM");
    await waitFor("gateway-p exited", () => !running(gw.process.pid as number), 45_000, 50);
    exitedAt = reads.now();
    report(`gateway-p exited ${exitedAt - termAt} ms after SIGTERM`);
    await sleep(1_000);
    await fleet.start("gateway-p", ["gateway"], { port });
    await waitReady(gw.url, 60_000);
    backAt = reads.now();
    await sleep(3_000);
  } finally {
    await rest.stop();
    await retrying.stop();
    const stopping = chatting.stop();
    await Promise.race([stopping, sleep(20_000)]);
    for (const s of sockets) await s.catchUp().catch(() => undefined);
    for (const s of sockets) s.close();
    await stopping;
  }
  const inFlight = reads.outcomes.filter((o) => o.at < termAt && o.at + o.ms > termAt);
  const lost = clients.reduce(
    (n, c) => n + acks.filter((a) => !received.get(c)?.has(a.clientMsgId)).length,
    0,
  );
  report(reads.summary(reads.between(0, termAt), "before SIGTERM"));
  report(reads.summary(inFlight, "in flight at SIGTERM"));
  report(
    reads.summary(reads.between(termAt, backAt), "gateway stopping and down (raw requests, not retried)"),
  );
  report(reads.summary(reads.between(backAt), "gateway back"));
  report(retried.summary(retried.outcomes, "reads through ApiClient.request, which retries"));
  report(
    `WebSocket: close codes ${JSON.stringify(tap.closeCodes)}; ${sent} sent, ${acks.length} acknowledged, ` +
      `${failedSends.length} failed, ${lost} acknowledged messages missing at a member`,
  );

  assert.ok(tap.closeCodes.includes(1001), "the sockets were closed with 1001");
  // The drain starts with the stop, so it ends well within an orchestrator's grace period
  // (Kubernetes gives 30 s, NodeProcess.stop 15 s) even under steady traffic.
  assert.ok(exitedAt - termAt < 15_000, `gateway-p exited ${exitedAt - termAt} ms after SIGTERM`);
  for (const o of reads.between(0, termAt))
    assert.equal(o.status, 200, "requests sent before SIGTERM all succeeded");
  assert.deepEqual(retried.statuses(), { "200": retried.outcomes.length }, "no retrying read failed");
  assert.ok(retried.outcomes.length > 0);
  assert.equal(failedSends.length, 0, "no send failed for the client library, which reconnects and resends");
  assert.equal(acks.length, sent, "every message was acknowledged");
  assert.equal(lost, 0, "every acknowledged message reached every member");
});
