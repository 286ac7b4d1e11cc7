/**
 * The bus and the cache go away under traffic. NATS is restarted: every node reconnects and
 * serves again with no restart of its own. Redis is killed: profile reads fall back to the store,
 * and rate limits fall back to each auth node's in-memory insurance limiter (lib/rate-limiter.ts),
 * so a client IP gets at most the limit per auth node instead of per cluster: they fail towards
 * more permissive, never open (no limit) and never closed (nobody can sign in).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { loop, report, sleep, Tally, waitFor } from "../support/traffic.ts";

const REQUEST_TIMEOUT_MS = 3_000;
const LOGIN_LIMIT = 4;
const NODES = ["auth-1", "auth-2", "profile-1", "profile-2", "chat-1", "gateway-1"];

let servers: Servers;
let cluster: TestCluster;
let gateway: string;
const users: { api: ApiClient; id: string }[] = [];

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, {
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    RATE_LIMIT_LOGIN_IP: `${LOGIN_LIMIT}/60`,
  });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("auth-2", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("profile-2", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  gateway = (await cluster.add("gateway-1", ["gateway"])).url;
  await waitReady(gateway);
  for (let i = 0; i < 4; i++) {
    const api = new ApiClient(gateway);
    users.push({ api, id: (await api.register(newUser(`b${i}`))).user.id });
  }
});

after(async () => {
  await cluster?.stop();
  await servers?.stop();
});

function readProfiles(tally: Tally) {
  return loop(users.length, (w, i) => {
    const api = (users[w] as { api: ApiClient }).api;
    return tally.run(() => api.raw("GET", `/users/${(users[(w + i) % users.length] as { id: string }).id}`));
  });
}

test("after a NATS restart every node reconnects and serves again", { timeout: 90_000 }, async () => {
  const reads = new Tally("NATS restart, GET /users/:id", 30_000);
  const traffic = readProfiles(reads);
  let restartAt = 0;
  let natsBackAt = 0;
  try {
    await sleep(2_000);
    restartAt = reads.now();
    await servers.nats.restart();
    natsBackAt = reads.now();
    // Every node answers a call addressed to it, from the gateway, over the bus.
    const gw = cluster.node("gateway-1").broker;
    const everyNode = await waitFor(
      "every node answered over the bus",
      async () => {
        for (const id of NODES) {
          const service = id.replace(/-\d$/, "");
          const action = service === "gateway" ? "gateway.connectedUsers" : `${service}.ready`;
          await gw.call(action, {}, { nodeID: id, timeout: 1_000, retries: 0 });
        }
        return true;
      },
      45_000,
      250,
    );
    report(
      `NATS down for ${natsBackAt - restartAt} ms; every node answered over the bus ${everyNode} ms after NATS was back`,
    );
    await sleep(3_000);
  } finally {
    await traffic.stop();
  }
  const healed = reads.recoveredAt(restartAt);
  report(reads.summary(reads.between(0, restartAt), "before"));
  report(reads.summary(reads.between(restartAt), "NATS restart and after"));
  report(
    `all 200 again from ${healed === undefined ? "never" : `${healed - natsBackAt} ms after NATS was back`}`,
  );
  for (const o of reads.outcomes)
    assert.ok([200, 503].includes(o.status), `200 or 503 only, got ${o.status}`);
  assert.ok(
    reads.slowestMs() <= REQUEST_TIMEOUT_MS + 1_500,
    `no request hung: slowest ${reads.slowestMs()} ms`,
  );
  assert.ok(healed !== undefined, "reads succeed again");
});

test("with Redis gone, reads fall back to the store and logins are limited per auth node", {
  timeout: 90_000,
}, async () => {
  const reads = new Tally("Redis killed, GET /users/:id", 30_000);
  const traffic = readProfiles(reads);
  let killedAt = 0;
  const logins = new Tally("Redis killed, failed logins from one IP", 30_000);
  try {
    await sleep(1_500);
    killedAt = reads.now();
    await servers.redis.kill();
    await sleep(REQUEST_TIMEOUT_MS + 1_500);
    // One client IP, wrong passwords: 401 until the budget is spent, then 429.
    const api = new ApiClient(gateway);
    for (let i = 0; i < LOGIN_LIMIT * 2 + 4; i++) {
      await logins.run(() =>
        api.raw("POST", "/auth/login", {
          body: { email: "nobody@example.test", password: "wrong-password-1" },
          headers: { "x-forwarded-for": "10.9.9.9" },
        }),
      );
    }
    await sleep(1_000);
  } finally {
    await traffic.stop();
    await servers.redis.restart();
  }
  const statuses = logins.outcomes.map((o) => o.status);
  report(reads.summary(reads.between(0, killedAt), "before"));
  report(reads.summary(reads.between(killedAt), "Redis down"));
  report(
    `failed logins from one IP with Redis down (limit ${LOGIN_LIMIT}, 2 auth nodes): ${statuses.join(" ")}`,
  );

  // Reads caught by the kill wait on the cacher's Redis client until the request timeout (503);
  // every read after them is answered from the store.
  for (const o of reads.between(killedAt))
    assert.ok([200, 503].includes(o.status), `200 or 503, got ${o.status}`);
  for (const o of reads.between(killedAt + REQUEST_TIMEOUT_MS + 500))
    assert.equal(o.status, 200, "reads keep working from the store");
  assert.ok(
    reads.slowestMs() <= REQUEST_TIMEOUT_MS + 1_500,
    `no read outlived the request timeout: slowest ${reads.slowestMs()} ms`,
  );
  const allowed = statuses.filter((s) => s === 401).length;
  assert.ok(
    statuses.every((s) => s === 401 || s === 429),
    "logins answer 401 or 429, never 503",
  );
  assert.ok(allowed >= LOGIN_LIMIT, "the limiter does not fail closed");
  assert.ok(allowed <= LOGIN_LIMIT * 2, "the limiter does not fail open: at most the limit per auth node");
  assert.equal(statuses.at(-1), 429);
});
