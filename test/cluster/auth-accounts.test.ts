/**
 * Auth across nodes, on real NATS, Redis and FerretDB: the failed-login budget of an account is
 * one for the cluster (in Redis), whatever name each login gives it and whichever auth node
 * answers; a refresh retried on another auth node within the grace window gets the same pair.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ServiceBroker } from "moleculer";
import { ApiClient } from "../../client/rest-client.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";

const GRACE_MS = 1_500;
let servers: Servers;
let cluster: TestCluster;
let gateway: string;
let broker: ServiceBroker;

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, {
    RATE_LIMIT_LOGIN_ACCOUNT: "4/60",
    RATE_LIMIT_LOGIN_IP: "100000/60",
    REFRESH_REUSE_GRACE_MS: String(GRACE_MS),
  });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("auth-2", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  const gw = await cluster.add("gateway-1", ["gateway"]);
  gateway = gw.url;
  broker = gw.broker;
  await waitReady(gateway);
});

after(async () => {
  await cluster?.stop();
  await servers?.stop();
});

type Pair = { accessToken: string; refreshToken: string; expiresIn: number };
const on = (nodeID: string) => ({ nodeID, meta: { clientIp: "198.51.100.20" } });
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (err: Error) => err.name,
  );

describe("failed logins per account, cluster-wide", () => {
  test("wrong passwords by email on one auth node and by username on the other share one budget", async () => {
    const input = newUser();
    await new ApiClient(gateway).register(input);
    const wrong = "not-the-password-1";
    const tries = [
      ["auth-1", { email: input.email, password: wrong }],
      ["auth-1", { email: input.email.toUpperCase(), password: wrong }],
      ["auth-2", { username: input.username, password: wrong }],
      ["auth-2", { username: input.username.toUpperCase(), password: wrong }],
    ] as const;
    for (const [node, params] of tries)
      await assert.rejects(broker.call("auth.login", params, on(node)), { name: "InvalidCredentialsError" });
    for (const node of ["auth-1", "auth-2"]) {
      await assert.rejects(
        broker.call("auth.login", { username: input.username, password: input.password }, on(node)),
        { name: "RateLimitedError", code: 429 },
        `paused on ${node} too`,
      );
    }
  });

  test("a name of no account is paused after as many failures, on either node", async () => {
    const ghost = newUser();
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const node = i % 2 ? "auth-2" : "auth-1";
      outcomes.push(
        await outcome(
          broker.call("auth.login", { email: ghost.email, password: "wrong-password-9" }, on(node)),
        ),
      );
    }
    assert.deepEqual(outcomes, [
      "InvalidCredentialsError",
      "InvalidCredentialsError",
      "InvalidCredentialsError",
      "InvalidCredentialsError",
      "RateLimitedError",
    ]);
  });
});

describe("refresh retries across auth nodes", () => {
  test("the same token refreshed on both auth nodes at once gets one pair", async () => {
    const { refreshToken } = await new ApiClient(gateway).register(newUser());
    const [a, b] = (await Promise.all([
      broker.call("auth.refresh", { refreshToken }, { nodeID: "auth-1" }),
      broker.call("auth.refresh", { refreshToken }, { nodeID: "auth-2" }),
    ])) as [Pair, Pair];
    assert.deepEqual(b, a);
    const next = (await broker.call(
      "auth.refresh",
      { refreshToken: a.refreshToken },
      { nodeID: "auth-2" },
    )) as Pair;
    const retried = (await broker.call(
      "auth.refresh",
      { refreshToken: a.refreshToken },
      { nodeID: "auth-1" },
    )) as Pair;
    assert.deepEqual(retried, next, "a retry on the other node answers the same pair");
  });

  test("after the window a repeat on the other node revokes the session", async () => {
    const { refreshToken } = await new ApiClient(gateway).register(newUser());
    const pair = (await broker.call("auth.refresh", { refreshToken }, { nodeID: "auth-1" })) as Pair;
    await new Promise((r) => setTimeout(r, GRACE_MS + 300));
    await assert.rejects(broker.call("auth.refresh", { refreshToken }, { nodeID: "auth-2" }), {
      name: "InvalidRefreshTokenError",
      code: 401,
    });
    await assert.rejects(
      broker.call("auth.refresh", { refreshToken: pair.refreshToken }, { nodeID: "auth-1" }),
      { name: "InvalidRefreshTokenError", code: 401 },
    );
  });
});
