/**
 * The cluster tier: gateways, auth and profile nodes as separate brokers that meet only over a
 * real nats-server, with a real Redis and a real MongoDB-wire server (FerretDB).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient, expectSession } from "../../client/rest-client.ts";
import { METRIC } from "../../lib/metrics.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { scrape } from "../support/prometheus.ts";
import { waitFor } from "../support/traffic.ts";

let servers: Servers;
let cluster: TestCluster;
let gw1: string;
let gw2: string;

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers);
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("auth-2", ["auth"]);
  // The profile nodes keep their cache in memory, so invalidation must cross nodes on the bus.
  await cluster.add("profile-1", ["profile"], { REDIS_URL: undefined });
  await cluster.add("profile-2", ["profile"], { REDIS_URL: undefined });
  await cluster.add("chat-1", ["chat"]);
  // The gateways keep the profiles they read for a minute: a change must reach them on the bus.
  gw1 = (
    await cluster.add("gateway-1", ["gateway"], { PROFILE_LOCAL_CACHE_TTL_S: "60", METRICS_ENABLED: "true" })
  ).url;
  gw2 = (await cluster.add("gateway-2", ["gateway"], { PROFILE_LOCAL_CACHE_TTL_S: "60" })).url;
  await Promise.all([waitReady(gw1), waitReady(gw2)]);
});

after(async () => {
  await cluster?.stop();
  await servers?.stop();
});

describe("cluster over NATS, Redis and FerretDB", () => {
  test("a user registered through one gateway signs in and reads their profile through the other", async () => {
    const input = newUser();
    const a = new ApiClient(gw1);
    const reg = await a.register(input);
    const b = new ApiClient(gw2);
    const login = expectSession(await b.login({ username: input.username, password: input.password }));
    assert.equal(login.user.id, reg.user.id);
    const me = await b.me();
    assert.equal(me.email, input.email);
  });

  test("when one auth node stops, the other serves every registration", async () => {
    await cluster.remove("auth-2");
    for (let i = 0; i < 3; i++) {
      const res = await new ApiClient(gw1).raw("POST", "/auth/register", { body: newUser() });
      assert.equal(res.status, 201);
    }
    await cluster.add("auth-2", ["auth"]);
  });

  test("a profile change drops the cached copy on every profile node", async () => {
    const owner = new ApiClient(gw1);
    const { user } = await owner.register(newUser());
    const broker = cluster.node("gateway-2").broker;
    const readOn = async (nodeID: string) =>
      ((await broker.call("profile.get", { id: user.id }, { nodeID })) as { displayName: string })
        .displayName;
    assert.equal(await readOn("profile-1"), user.displayName);
    assert.equal(await readOn("profile-2"), user.displayName);
    await owner.updateMe({ displayName: "Renamed" });
    assert.equal(await readOn("profile-1"), "Renamed");
    assert.equal(await readOn("profile-2"), "Renamed");
  });

  test("a gateway answers a profile it read again from its copy, and a change through the other gateway drops it", async () => {
    const owner = new ApiClient(gw2);
    const { user } = await owner.register(newUser());
    const { user: other } = await new ApiClient(gw2).register(newUser());
    const reader = new ApiClient(gw1);
    await reader.register(newUser());
    const gateway = cluster.node("gateway-1").broker;
    const lookups = async () => {
      const metrics = await scrape(gateway);
      return {
        hit: metrics.sum(METRIC.GATEWAY_PROFILE_CACHE, { result: "hit" }),
        miss: metrics.sum(METRIC.GATEWAY_PROFILE_CACHE, { result: "miss" }),
      };
    };
    const before = await lookups();
    assert.equal((await reader.user(user.id)).displayName, user.displayName);
    assert.equal((await reader.user(user.id)).displayName, user.displayName);
    const after = await lookups();
    assert.deepEqual({ hit: after.hit - before.hit, miss: after.miss - before.miss }, { hit: 1, miss: 1 });

    await owner.updateMe({ displayName: "Renamed at the edge" });
    await waitFor(
      "gateway-1 answers the new name (its copy would keep the old one for 60 s)",
      async () => (await reader.user(user.id)).displayName === "Renamed at the edge",
      3_000,
    );

    // What the profile node refuses is still refused for a profile the gateway holds.
    const refused = await reader.raw("GET", `/users/${other.id}?extra=1`);
    assert.ok(refused.status >= 400 && refused.status < 500, `refused with ${refused.status}`);
    const held = await reader.raw("GET", `/users/${user.id}?extra=1`);
    assert.equal(held.status, refused.status);
    assert.equal((await reader.raw("GET", `/users/${user.id}x`)).status, 404);
  });

  test("logout on one gateway makes the token fail at once on the other", async () => {
    const client = new ApiClient(gw1);
    await client.register(newUser());
    const token = client.accessToken;
    const other = new ApiClient(gw2);
    assert.equal((await other.raw("GET", "/users/me", { token })).status, 200);
    await client.logout();
    let status = 0;
    for (let i = 0; i < 20 && status !== 401; i++) {
      status = (await other.raw("GET", "/users/me", { token })).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(status, 401);
  });

  test("a registration cut off by a missing profile service leaves no account behind", async () => {
    const input = newUser();
    const broker = cluster.node("gateway-1").broker;
    await cluster.remove("profile-1");
    await cluster.remove("profile-2");
    await assert.rejects(
      broker.call("auth.register", input, { meta: { clientIp: "127.0.0.1" } }),
      (err: { code?: number }) => err.code === 503,
    );
    await cluster.add("profile-1", ["profile"], { REDIS_URL: undefined });
    await cluster.add("profile-2", ["profile"], { REDIS_URL: undefined });
    await waitReady(gw1);
    const login = await new ApiClient(gw1).raw("POST", "/auth/login", {
      body: { email: input.email, password: input.password },
    });
    assert.equal(login.status, 401, "no half account can sign in");
    const again = await new ApiClient(gw1).raw("POST", "/auth/register", { body: input });
    assert.equal(again.status, 201, "the email and username are free again");
  });
});

describe("cluster-wide rate limits", () => {
  let limited: TestCluster;
  let gwA: string;
  let gwB: string;

  before(async () => {
    limited = await TestCluster.start(servers, {
      RATE_LIMIT_LOGIN_IP: "6/60",
      RATE_LIMIT_REGISTER_IP: "1000/60",
    });
    await limited.add("auth-a", ["auth"]);
    await limited.add("auth-b", ["auth"]);
    await limited.add("profile-a", ["profile"]);
    await limited.add("chat-a", ["chat"]);
    gwA = (await limited.add("gw-a", ["gateway"])).url;
    gwB = (await limited.add("gw-b", ["gateway"])).url;
    await Promise.all([waitReady(gwA), waitReady(gwB)]);
  });
  after(() => limited?.stop());

  test("two gateways and two auth nodes count against one budget in Redis", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const url = i % 2 ? gwA : gwB;
      const res = await new ApiClient(url).raw("POST", "/auth/login", {
        body: { email: "nobody@example.test", password: "wrong-password" },
        headers: { "x-forwarded-for": `10.0.0.${i}` },
      });
      statuses.push(res.status);
      if (res.status === 429) assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 429, 429]);
  });
});
