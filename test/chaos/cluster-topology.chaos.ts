/**
 * Chaos on the clustered topology, configured by env vars alone: every node gets TRANSPORTER with
 * the three servers of a NATS cluster and REDIS_CLUSTER_NODES with the seeds of a Redis Cluster
 * (three masters, a replica each). 50 clients in 10 groups send through two gateways and two chat
 * nodes, each a process of its own, while the NATS server with the most clients is killed with
 * SIGKILL (its clients move to the other two) and then the Redis master that holds the WebSocket
 * connection counts (the slot of their hash tag) is killed with SIGKILL (its replica takes over).
 * The accounting is chat.chaos.ts's (test/support/chaos.ts): no acknowledged message lost, nothing
 * unexpected, no seq gap or duplicate.
 *
 * After the faults, with nothing restarted, the Redis-backed limits must work again by themselves,
 * counted in Redis across nodes (each node alone would admit more):
 * - WS_MAX_CONNECTIONS_PER_USER: a fresh user opens sockets on both gateways in turn; the one past
 *   the cap is refused (4029). A gateway counting alone (Redis away) admits the cap on each.
 * - RATE_LIMIT_CHAT_CREATE_USER: a fresh user whose limit key hashes to a slot of the failed-over
 *   shard creates chats through one gateway, which sends them to both chat nodes in turn; the one
 *   past the limit is refused (429). Each chat node's insurance limiter would admit the limit on
 *   each node.
 * Both are retried (with the sockets and chats of a failed try dropped) until they hold, and the
 * time to recovery is printed.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView } from "../../lib/contracts.ts";
import {
  type NatsClusterHandle,
  type RedisClusterHandle,
  startNatsCluster,
  startRedisCluster,
} from "../harness/clusters.ts";
import { type FerretHandle, startFerret } from "../harness/servers.ts";
import {
  account,
  assertClean,
  type ChaosClient,
  type ChaosCluster,
  groupClients,
  progressLog,
  sendAll,
  sleep,
  startChaosCluster,
} from "../support/chaos.ts";
import { newUser } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const CLIENTS = 50;
const GROUP_SIZE = 5;
/** 100 by default; CHAOS_MESSAGES_PER_CLIENT makes a shorter run (CI: 20). */
const PER_CLIENT = Number(process.env.CHAOS_MESSAGES_PER_CLIENT ?? 100);
/** A pause between one client's sends, so the traffic lasts through both failovers. */
const PAUSE_MS = 250;
const WS_CAP = 3;
const CHAT_CREATE_LIMIT = 3;
const RECOVERY_TIMEOUT_MS = 60_000;
const NAMESPACE = `topo${process.pid}`;

let nats: NatsClusterHandle;
let redis: RedisClusterHandle;
let mongo: FerretHandle;
let cluster: ChaosCluster | undefined;
/** The gateways' URLs, once the cluster is up. */
let gatewayUrls: string[] = [];
const progress = progressLog();

before(async () => {
  [nats, redis, mongo] = await Promise.all([startNatsCluster(3), startRedisCluster(), startFerret()]);
  progress(`NATS cluster ${nats.url}; Redis Cluster ${redis.nodes}`);
  cluster = await startChaosCluster({
    NAMESPACE,
    TRANSPORTER: nats.url,
    MONGO_URL: `${mongo.url}/${NAMESPACE}`,
    REDIS_CLUSTER_NODES: redis.nodes,
    RATE_LIMIT_CHAT_CREATE_USER: `${CHAT_CREATE_LIMIT}/3600`,
    WS_MAX_CONNECTIONS_PER_USER: String(WS_CAP),
  });
  gatewayUrls = cluster.gatewayUrls;
  progress(`cluster ready; clients per NATS server: ${(await nats.connections()).join(", ")}`);
});

after(async () => {
  await cluster?.kill();
  await Promise.all([nats?.stop(), redis?.stop(), mongo?.stop()]);
});

const wsUrl = (url: string) => `${url.replace("http", "ws")}/ws`;

/** "ready", or the close code of a refused socket; a ready socket is kept in `open`. */
async function attempt(url: string, token: string, open: RawSocket[]): Promise<string | number> {
  const s = new RawSocket(wsUrl(url), { token });
  const result = await Promise.race([
    s.next((f) => f.type === "ready").then(() => "ready"),
    s.closed.then((c) => c.code),
  ]);
  if (result === "ready") open.push(s);
  return result;
}

/** Retries `check` (true: it held) until it holds; answers the ms it took and the tries. */
async function until(what: string, check: () => Promise<boolean>): Promise<{ ms: number; tries: number }> {
  const began = Date.now();
  for (let tries = 1; ; tries++) {
    if (await check()) return { ms: Date.now() - began, tries };
    if (Date.now() - began > RECOVERY_TIMEOUT_MS)
      assert.fail(`${what} did not recover in ${RECOVERY_TIMEOUT_MS} ms`);
    await sleep(500);
  }
}

test("no acknowledged message is lost through a NATS server and a Redis master killed, and the Redis-backed limits recover", async () => {
  const clients: ChaosClient[] = await groupClients(gatewayUrls, CLIENTS, GROUP_SIZE);
  progress(`${CLIENTS} users registered, ${CLIENTS / GROUP_SIZE} groups made, sockets connected; sending`);
  const total = CLIENTS * PER_CLIENT;
  const sending = sendAll(clients, PER_CLIENT, PAUSE_MS);
  const atShare = async (share: number) => {
    while (sending.acked() < share * total) await sleep(20);
  };

  // The master of the slot that every WebSocket count key hashes to (their hash tag), and the
  // replica that is to take over.
  const wsSlot = await redis.slotOf(`{${NAMESPACE}:ws}:gateways`);
  const master = await redis.masterOf(wsSlot);
  const replica = (await redis.topology()).find((n) => n.masterId === master.id);
  assert.ok(replica, "the master of the WebSocket counts has a replica");
  const struckAt: Record<string, number> = {};
  const timings: Record<string, number> = {};
  const faults = (async () => {
    await atShare(0.2);
    const counts = await nats.connections();
    const busiest = counts.indexOf(Math.max(...counts));
    struckAt.nats = sending.acked();
    await nats.servers[busiest]?.kill();
    progress(`NATS server ${nats.servers[busiest]?.port} (of ${counts.join(", ")} clients) killed`);
    await atShare(0.5);
    struckAt.redis = sending.acked();
    const killedAt = Date.now();
    await redis.server(master.port).kill();
    progress(`Redis master ${master.port} (slot ${wsSlot} of the WebSocket counts) killed`);
    for (;;) {
      const now = await redis.masterOf(wsSlot).catch(() => undefined);
      if (now && now.port === replica.port) break;
      if (Date.now() - killedAt > RECOVERY_TIMEOUT_MS) assert.fail("the replica did not take over");
      await sleep(100);
    }
    timings.redisFailoverMs = Date.now() - killedAt;
    progress(`replica ${replica.port} serves slot ${wsSlot} ${timings.redisFailoverMs} ms after the kill`);
  })();

  const ticker = setInterval(() => progress(`${sending.acked()} of ${total} sends acknowledged`), 10_000);
  await Promise.all([sending.done, faults]).finally(() => clearInterval(ticker));
  progress(
    `every send acknowledged; faults struck at ${Object.entries(struckAt)
      .map(([what, n]) => `${what} ${n}`)
      .join(", ")} acknowledged of ${total}`,
  );
  for (const [what, n] of Object.entries(struckAt))
    assert.ok(n < total, `${what} struck after the last send`);
  await sleep(2_000);
  for (const c of clients) await c.socket.catchUp();
  progress("every client caught up");
  const result = account(clients, sending.sent);
  for (const c of clients) c.socket.close();
  assertClean(result, total);

  // WebSocket cap, counted in Redis on the failed-over shard.
  const user = new ApiClient(gatewayUrls[0] as string);
  await user.register(newUser("cap"));
  const token = user.accessToken as string;
  const cap = await until("WS_MAX_CONNECTIONS_PER_USER", async () => {
    const open: RawSocket[] = [];
    const outcomes: (string | number)[] = [];
    for (let i = 0; i <= WS_CAP; i++) outcomes.push(await attempt(gatewayUrls[i % 2] as string, token, open));
    const held = outcomes.slice(0, WS_CAP).every((o) => o === "ready") && outcomes[WS_CAP] === 4029;
    for (const s of open) s.close();
    await Promise.all(open.map((s) => s.closed));
    if (!held) progress(`socket cap not yet back: ${outcomes.join(", ")}`);
    // Give the releases time to reach Redis before a next try.
    await sleep(300);
    return held;
  });
  progress(`the socket cap held across both gateways after ${cap.tries} tries (${cap.ms} ms)`);

  // Chat creation limit, for a user whose limit key is on the failed-over shard.
  const peer = new ApiClient(gatewayUrls[0] as string);
  const peerId = (await peer.register(newUser("peer"))).user.id;
  const limit = await until("RATE_LIMIT_CHAT_CREATE_USER", async () => {
    let creator: ApiClient | undefined;
    for (let i = 0; !creator && i < 30; i++) {
      const candidate = new ApiClient(gatewayUrls[0] as string);
      const id = (await candidate.register(newUser("lim"))).user.id;
      const slot = await redis.slotOf(`${NAMESPACE}:rl:chat-create-user:${id}`);
      if ((await redis.masterOf(slot)).port === replica.port) creator = candidate;
    }
    assert.ok(creator, "a user whose limit key is on the failed-over shard");
    const statuses: number[] = [];
    for (let i = 0; i <= CHAT_CREATE_LIMIT; i++) {
      statuses.push(
        await creator
          .request<ChatView>("POST", "/chats", { type: "group", name: `l${i}`, memberIds: [peerId] })
          .then(
            () => 201,
            (err: { status?: number }) => err.status ?? 0,
          ),
      );
    }
    const held =
      statuses.slice(0, CHAT_CREATE_LIMIT).every((s) => s === 201) && statuses[CHAT_CREATE_LIMIT] === 429;
    if (!held) progress(`chat creation limit not yet back: ${statuses.join(", ")}`);
    return held;
  });
  progress(`the chat creation limit held across both chat nodes after ${limit.tries} tries (${limit.ms} ms)`);
  process.stdout.write(
    `chaos: topology: Redis failover ${timings.redisFailoverMs} ms; socket cap back after ${cap.tries} tries, ` +
      `chat creation limit after ${limit.tries} tries\n`,
  );
});
