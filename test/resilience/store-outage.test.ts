/**
 * The store goes away under traffic: FerretDB is killed with SIGKILL while clients read over REST
 * and send chat messages over WebSocket, then started again on the same port with its data.
 * REST callers get 503 with Retry-After at once (the gateway's readiness fails), never a hang past
 * the request timeout; WebSocket sends, which do not pass the readiness gate, trip the circuit
 * breaker on the chat endpoint, which half-opens, and closes once the store is back; the client
 * library resends until every message is acknowledged.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Ack, ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { loop, report, sleep, Tally, waitFor } from "../support/traffic.ts";
import { wsTap } from "../support/ws-tap.ts";

const REQUEST_TIMEOUT_MS = 2_000;
const HALF_OPEN_MS = 1_000;
const OUTAGE_MS = 8_000;
const CLIENTS = 6;
/**
 * Sends each socket keeps in flight. A circuit opens on enough failures within one window
 * (CIRCUIT_BREAKER_WINDOW_S); while the store is down each send fails only at the request timeout,
 * so one send per socket could leave a window under CIRCUIT_BREAKER_MIN_REQUESTS on a loaded machine.
 */
const SENDS_IN_FLIGHT = 3;

let servers: Servers;
let cluster: TestCluster;
let gateway: string;

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, {
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    CIRCUIT_BREAKER_HALF_OPEN_MS: String(HALF_OPEN_MS),
    CIRCUIT_BREAKER_MIN_REQUESTS: "5",
    CIRCUIT_BREAKER_WINDOW_S: "3",
    // The senders below keep about 6 frames/s per socket in flight, right at the default frame
    // budget (60/10) and, over a slow heal, past the default send budget (120/60): a RATE_LIMITED
    // frame then is the limiter doing its job, not the outage. Rate limits have tests of their own.
    WS_RATE_LIMIT: "1000/1",
    RATE_LIMIT_SEND_USER: "1000000/60",
  });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  gateway = (await cluster.add("gateway-1", ["gateway"])).url;
  await waitReady(gateway);
});

after(async () => {
  await cluster?.stop();
  await servers?.stop();
});

test("a store outage answers 503 within the request timeout, trips the circuit breaker, and heals", {
  timeout: 110_000,
}, async () => {
  const users: ApiClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const api = new ApiClient(gateway);
    await api.register(newUser(`s${i}`));
    users.push(api);
  }
  const [owner, ...members] = users as [ApiClient, ...ApiClient[]];
  const memberIds = await Promise.all(members.map(async (m) => (await m.me()).id));
  const chat = await owner.request<ChatView>("POST", "/chats", { type: "group", name: "g", memberIds });

  const reads = new Tally("REST reads (GET /users?q=, GET /chats)", 60_000);
  const breaker: { event: string; at: number; endpoint: string }[] = [];
  // Every broker keeps circuits of its own: the gateway for the nodes it calls, each service node
  // for its local actions, which it then refuses to remote callers while open.
  for (const [observer, node] of cluster.nodes) {
    for (const event of ["opened", "half-opened", "closed"]) {
      node.broker.localBus.on(`$circuit-breaker.${event}`, (p: { nodeID: string; action: string }) =>
        breaker.push({ event, at: reads.now(), endpoint: `${p.nodeID}:${p.action} (seen by ${observer})` }),
      );
    }
  }
  const tap = wsTap();
  const sockets = users.map(
    (api) =>
      new ChatSocket(api, {
        ackTimeoutMs: 2_000,
        minDelayMs: 100,
        maxDelayMs: 1_000,
        WebSocketImpl: tap.WebSocketImpl,
      }),
  );
  for (const s of sockets) await s.connect();

  const acks: { at: number; ms: number; ack: Ack }[] = [];
  let sent = 0;
  const rest = loop(CLIENTS, (w, i) => {
    const api = users[w] as ApiClient;
    return reads.run(() => (i % 2 ? api.raw("GET", `/users?q=s${w}`) : api.raw("GET", "/chats")));
  });
  const chatting = loop(
    CLIENTS * SENDS_IN_FLIGHT,
    async (w, i) => {
      const at = reads.now();
      sent += 1;
      const ack = await (sockets[w % CLIENTS] as ChatSocket)
        .send({ chatId: chat.id }, `m${i}`, `w${w}-m${i}`)
        .catch(() => undefined);
      if (ack) acks.push({ at, ms: reads.now() - at, ack });
    },
    100,
  );

  const unavailable = () => tap.frames.filter((f) => f.type === "error" && f.code === "SERVICE_UNAVAILABLE");
  const openEndpoints = () =>
    [...cluster.nodes].flatMap(([observer, node]) =>
      ["chat.send", "chat.list", "profile.search"].flatMap((action) =>
        (
          (
            node.broker.registry.getActionEndpoints(action) as unknown as
              | { endpoints: { id: string; state: boolean }[] }
              | undefined
          )?.endpoints ?? []
        )
          .filter((ep) => !ep.state)
          .map((ep) => `${ep.id}:${action} (seen by ${observer})`),
      ),
    );
  let killedAt = 0;
  let restartedAt = 0;
  let storeBackAt = 0;
  const stopTraffic = async () => {
    // Sends in flight get their ack (the client resends until they do) before the sockets close.
    const stopping = Promise.all([rest.stop(), chatting.stop()]);
    await Promise.race([stopping, sleep(20_000)]);
    for (const s of sockets) s.close();
    await stopping;
  };
  try {
    await sleep(2_000);
    killedAt = reads.now();
    await servers.mongo.kill();
    await sleep(OUTAGE_MS);
    restartedAt = reads.now();
    await servers.mongo.restart();
    storeBackAt = reads.now();
    await waitFor(
      "REST reads answered 200 again",
      () => {
        const last = reads.outcomes.slice(-8);
        return last.length === 8 && last.every((o) => o.status === 200 && o.at > restartedAt);
      },
      45_000,
    ).catch(async (err: Error) => {
      // Which of the gateway's checks still fails says where the healing stopped.
      const readiness = await fetch(`${gateway}/health/ready`).then(
        (r) => r.text(),
        (e: Error) => e.message,
      );
      // And how each service's own store check answers, asked directly.
      const gatewayBroker = cluster.nodes.get("gateway-1")?.broker;
      const pings = await Promise.all(
        ["auth", "profile", "chat"].map(async (service) => {
          const started = Date.now();
          const outcome = await gatewayBroker
            ?.call(`${service}.ready`, {}, { timeout: 10_000, retries: 0 })
            .then(
              () => "ok",
              (e: Error & { code?: unknown; data?: unknown }) =>
                `${e.name} ${String(e.code)}: ${e.message} ${JSON.stringify(e.data ?? null)}`,
            );
          return `${service}.ready ${outcome} in ${Date.now() - started} ms`;
        }),
      );
      throw new Error(`${err.message}; GET /health/ready: ${readiness}; ${pings.join("; ")}`);
    });
    await waitFor("every circuit closed again", () => openEndpoints().length === 0, 20_000);
    await sleep(1_000);
  } finally {
    await stopTraffic();

    report(reads.summary(reads.between(0, killedAt), "before"));
    report(reads.summary(reads.between(killedAt, restartedAt), "store down"));
    report(reads.summary(reads.between(restartedAt), "store back"));
    const slowestAck = acks.reduce((m, a) => Math.max(m, a.ms), 0);
    report(
      `WebSocket sends: ${sent} sent, ${acks.length} acknowledged, ${unavailable().length} SERVICE_UNAVAILABLE ` +
        `error frames resent by the client, slowest ack ${slowestAck} ms`,
    );
    report(`circuit breaker: ${breaker.map((b) => `${b.event} ${b.endpoint} at ${b.at} ms`).join("; ")}`);
    const healed = reads.recoveredAt(restartedAt);
    report(
      `store killed at ${killedAt} ms, restart begun at ${restartedAt} ms, accepting at ${storeBackAt} ms; ` +
        `REST all 200 from ${healed} ms (${healed === undefined ? "never" : `${healed - restartedAt} ms after the restart began`})`,
    );
  }

  for (const o of reads.outcomes)
    assert.ok([200, 503].includes(o.status), `only 200 or 503, got ${o.status}`);
  const down = reads.between(killedAt, restartedAt);
  assert.ok(down.filter((o) => o.status === 503).length > 0, "REST callers got 503 while the store was down");
  assert.ok(
    reads.slowestMs() <= REQUEST_TIMEOUT_MS + 1_500,
    `no REST request outlived the request timeout: slowest ${reads.slowestMs()} ms`,
  );
  const opened = breaker.find((b) => b.event === "opened" && b.at > killedAt && b.at < storeBackAt);
  assert.ok(opened, "the circuit opened on a failing endpoint while the store was down");
  assert.ok(
    breaker.some((b) => b.event === "half-opened" && b.at > opened.at),
    "the open circuit half-opened",
  );
  assert.ok(unavailable().length > 0, "WebSocket senders were told the service is unavailable");
  const otherErrors = tap.frames.filter((f) => f.type === "error" && f.code !== "SERVICE_UNAVAILABLE");
  assert.deepEqual(
    otherErrors.map((f) => `${String(f.code)}: ${String(f.message)}`),
    [],
    "a store outage is only ever SERVICE_UNAVAILABLE to a sender",
  );
  assert.equal(acks.length, sent, "every message sent over WebSocket was acknowledged in the end");
});
