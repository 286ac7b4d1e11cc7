/**
 * Chaos with Jepsen-style accounting: 50 clients in 10 groups exchange 5,000 messages (by default) through two
 * gateways and two chat nodes, each a process of its own, while a gateway and then a chat node are
 * killed with SIGKILL and restarted, and NATS is restarted. Every acknowledged message must reach
 * every member; nothing may arrive that was never sent; seqs may have no gap and no duplicate.
 * A resume replays at most 5 messages per chat here, so what the clients of the killed gateway
 * missed comes mostly from the history pages the client library fetches.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  account,
  assertClean,
  type ChaosCluster,
  groupClients,
  progressLog,
  sendAll,
  sleep,
  startChaosCluster,
} from "../support/chaos.ts";
import { type Servers, startServers } from "../support/cluster.ts";

const CLIENTS = 50;
const GROUP_SIZE = 5;
/** 100 gives the 5,000 messages of the full run; CHAOS_MESSAGES_PER_CLIENT makes a shorter one. */
const PER_CLIENT = Number(process.env.CHAOS_MESSAGES_PER_CLIENT ?? 100);

let servers: Servers;
let cluster: ChaosCluster | undefined;

before(async () => {
  servers = await startServers();
  cluster = await startChaosCluster({
    NAMESPACE: `chaos${process.pid}`,
    TRANSPORTER: servers.nats.url,
    MONGO_URL: `${servers.mongo.url}/chaos${process.pid}`,
    REDIS_URL: servers.redis.url,
  });
  progress("cluster ready");
});

after(async () => {
  await cluster?.kill();
  await servers?.stop();
});

const progress = progressLog();

test("no acknowledged message is lost through gateway, chat node and NATS failures", async () => {
  const { gatewayUrls, node } = cluster as ChaosCluster;
  const clients = await groupClients(gatewayUrls, CLIENTS, GROUP_SIZE);
  progress(`${CLIENTS} users registered, ${CLIENTS / GROUP_SIZE} groups made, sockets connected; sending`);
  const { sent, done: sending, acked: ackedSoFar } = sendAll(clients, PER_CLIENT, 100);

  const total = CLIENTS * PER_CLIENT;
  /** Each fault strikes once this share of the sends is acknowledged, so it lands mid-traffic at any speed. */
  const atShare = async (share: number) => {
    while (ackedSoFar() < share * total) await sleep(20);
  };
  /** Acknowledged sends when each fault began: all must be below the total. */
  const struckAt: Record<string, number> = {};
  const faults = (async () => {
    await atShare(0.15);
    struckAt["gw-1"] = ackedSoFar();
    await node("gw-1").kill("SIGKILL");
    await sleep(1_500);
    await node("gw-1").start();
    progress("gw-1 killed and restarted");
    await atShare(0.45);
    struckAt["chat-1"] = ackedSoFar();
    await node("chat-1").kill("SIGKILL");
    await sleep(1_500);
    await node("chat-1").start();
    progress("chat-1 killed and restarted");
    await atShare(0.75);
    struckAt.nats = ackedSoFar();
    await servers.nats.restart();
    progress("NATS restarted");
  })();

  const ticker = setInterval(() => progress(`${ackedSoFar()} of ${total} sends acknowledged`), 10_000);
  await Promise.all([sending, faults]).finally(() => clearInterval(ticker));
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

  const result = account(clients, sent);
  for (const c of clients) c.socket.close();
  assertClean(result, CLIENTS * PER_CLIENT);
});
