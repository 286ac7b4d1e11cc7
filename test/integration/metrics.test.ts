/**
 * The whole platform in one process with metrics and tracing on: REST calls, a WebSocket
 * exchange, a 429, a cache miss and hit, then /metrics scraped and every counter checked to have
 * moved by exactly what the test did; log lines of a request carry its requestId and traceId.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { type Context, Errors, ServiceBroker } from "moleculer";
import { createBrokerOptions } from "../../broker.config.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type GatewayService from "../../gateway/gateway.service.ts";
import { loadConfig } from "../../lib/config.ts";
import { startServers, TestCluster } from "../support/cluster.ts";
import { newUser, SERVICES, tempDir, waitReady } from "../support/platform.ts";
import { type Scrape, scrape } from "../support/prometheus.ts";
import { RawSocket } from "../support/ws.ts";

type LogLine = Record<string, unknown> & { msg?: string };

/** Pino writes each line here; kept parsed. */
class LogLines extends Writable {
  readonly lines: LogLine[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of String(chunk).split("\n")) if (line) this.lines.push(JSON.parse(line) as LogLine);
    done();
  }
}

interface Span {
  traceID: string;
  name: string;
}

let broker: ServiceBroker;
let url: string;
let removeData: () => Promise<void>;
const logs = new LogLines();
const spans: Span[] = [];

before(async () => {
  const data = await tempDir();
  removeData = data.remove;
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    METRICS_ENABLED: "true",
    METRICS_PORT: "0",
    DATA_DIR: data.dir,
    TRACING_EXPORTER: "event",
    RATE_LIMIT_LOGIN_ACCOUNT: "2/900",
  });
  const options = createBrokerOptions(config);
  const logger = options.logger as unknown as {
    options: { level: unknown; pino: { destination?: unknown } };
  };
  logger.options.level = { GATEWAY: "debug", "**": "info" };
  logger.options.pino.destination = logs;
  broker = new ServiceBroker(options);
  for (const service of Object.values(SERVICES)) broker.createService(service as never);
  broker.createService({
    name: "spans",
    events: { "$tracing.spans": (ctx: Context<Span[]>) => void spans.push(...ctx.params) },
  });
  await broker.start();
  url = `http://127.0.0.1:${(broker.getLocalService("gateway") as unknown as GatewayService).port}`;
  await waitReady(url);
});

after(async () => {
  await broker.stop();
  await removeData();
});

function delta(before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}): number {
  return after.sum(name, labels) - before.sum(name, labels);
}

function wsUrl(): string {
  return `${url.replace("http", "ws")}/ws`;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("metrics of one node", () => {
  let a: ApiClient;
  let b: ApiClient;
  let aliceId: string;
  let bobId: string;
  let aliceEmail: string;

  test("REST calls count per route template and status class, and in Moleculer's request metrics", async () => {
    const s0 = await scrape(broker);
    a = new ApiClient(url);
    b = new ApiClient(url);
    const aliceInput = newUser("ma");
    aliceEmail = aliceInput.email;
    aliceId = (await a.register(aliceInput)).user.id;
    bobId = (await b.register(newUser("mb"))).user.id;
    assert.equal((await fetch(`${url}/no/such/route`)).status, 404);
    const s1 = await scrape(broker);

    const register = { route: "/auth/register", method: "POST", status: "2xx" };
    assert.equal(delta(s0, s1, "social_http_request_duration_seconds_count", register), 2);
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_bucket", { ...register, le: "+Inf" }),
      2,
    );
    assert.ok(delta(s0, s1, "social_http_request_duration_seconds_sum", register) > 0);
    const buckets = s1.find("social_http_request_duration_seconds_bucket", register);
    assert.equal(buckets.length, 12, "11 bounds and +Inf");
    assert.equal(buckets[0]?.labels.node, broker.nodeID);
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_count", { route: "unmatched", status: "4xx" }),
      1,
    );
    assert.equal(
      s1.find("social_http_request_duration_seconds_count", { route: "/no/such/route" }).length,
      0,
    );
    assert.equal(delta(s0, s1, "moleculer_request_total", { action: "auth.register" }), 2);
    assert.ok(s1.find("moleculer_request_time_count", { action: "auth.register" }).length > 0);
  });

  test("file uploads and downloads count under their route templates, and their bytes by direction", async () => {
    const token = a.accessToken as string;
    const s0 = await scrape(broker);
    const body = Buffer.from("metered bytes\n");
    const up = await fetch(`${url}/uploads?name=m.txt`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body,
    });
    assert.equal(up.status, 201);
    const { id } = (await up.json()) as { id: string };
    const down = await fetch(`${url}/files/${id}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await down.arrayBuffer()).byteLength, body.length);
    const ranged = await fetch(`${url}/files/${id}`, {
      headers: { authorization: `Bearer ${token}`, range: "bytes=0-3" },
    });
    assert.equal(ranged.status, 206);
    await ranged.arrayBuffer();
    assert.equal((await fetch(`${url}/files/${id}`)).status, 401);
    const s1 = await scrape(broker);
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_count", { route: "/uploads", status: "2xx" }),
      1,
    );
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_count", {
        route: "/files/:id",
        method: "GET",
        status: "2xx",
      }),
      2,
    );
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_count", { route: "/files/:id", status: "4xx" }),
      1,
    );
    assert.equal(delta(s0, s1, "social_file_bytes_total", { direction: "upload" }), body.length);
    assert.equal(delta(s0, s1, "social_file_bytes_total", { direction: "download" }), body.length + 4);
  });

  test("a cache miss then a hit show in the cache metrics of both levels", async () => {
    const s0 = await scrape(broker);
    assert.equal((await a.raw("GET", `/users/${bobId}`)).status, 200);
    assert.equal((await a.raw("GET", `/users/${bobId}`)).status, 200);
    const s1 = await scrape(broker);
    // The first read misses the node's own cache and the shared cacher; the second hits the first.
    assert.equal(delta(s0, s1, "social_profile_local_cache_lookups_total", { result: "miss" }), 1);
    assert.equal(delta(s0, s1, "social_profile_local_cache_lookups_total", { result: "hit" }), 1);
    assert.equal(delta(s0, s1, "moleculer_cacher_get_total"), 1);
    assert.equal(delta(s0, s1, "moleculer_cacher_found_total"), 0);
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_count", {
        route: "/users/:id",
        method: "GET",
        status: "2xx",
      }),
      2,
    );
  });

  test("failed logins past the account limit give a 429, counted by limit name", async () => {
    const s0 = await scrape(broker);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      statuses.push(
        (
          await new ApiClient(url).raw("POST", "/auth/login", {
            body: { email: aliceEmail, password: "wrong-password-1" },
          })
        ).status,
      );
    }
    assert.deepEqual(statuses, [401, 401, 429]);
    const s1 = await scrape(broker);
    assert.equal(delta(s0, s1, "social_rate_limit_rejections_total", { limit: "login-account" }), 1);
    assert.equal(
      delta(s0, s1, "social_http_request_duration_seconds_count", { route: "/auth/login", status: "4xx" }),
      3,
    );
    assert.equal(delta(s0, s1, "moleculer_request_error_total", { action: "auth.login" }), 3);
    assert.equal(
      delta(s0, s1, "moleculer_request_error_total", { action: "auth.login", errorCode: "429" }),
      1,
    );
  });

  test("a WebSocket exchange counts connections, frames, deliveries with latency, store time and closes", async () => {
    const s0 = await scrape(broker);
    const sa = new RawSocket(wsUrl(), { token: a.accessToken as string });
    const sb = new RawSocket(wsUrl(), { token: b.accessToken as string });
    await Promise.all([sa.next((f) => f.type === "ready"), sb.next((f) => f.type === "ready")]);
    sa.send({ type: "send_message", recipientId: bobId, message: "hello", clientMsgId: "metrics-1" });
    await Promise.all([
      sa.next((f) => f.type === "ack"),
      sa.next((f) => f.type === "new_message"),
      sb.next((f) => f.type === "new_message"),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const received = sa.frames.length + sb.frames.length;
    const s1 = await scrape(broker);

    assert.equal(s1.sum("social_ws_connections"), 2);
    assert.equal(delta(s0, s1, "social_ws_frames_received_total"), 1);
    assert.equal(delta(s0, s1, "social_ws_frames_sent_total"), received);
    assert.equal(delta(s0, s1, "social_chat_messages_stored_total"), 1);
    assert.equal(delta(s0, s1, "social_chat_messages_delivered_total"), 2);
    assert.equal(delta(s0, s1, "social_chat_delivery_latency_seconds_count"), 2);
    assert.equal(delta(s0, s1, "social_chat_delivery_latency_seconds_bucket", { le: "10" }), 2);
    assert.equal(
      delta(s0, s1, "social_store_operation_duration_seconds_count", {
        collection: "messages",
        operation: "insertMany",
      }),
      1,
    );
    assert.ok(
      s1.find("social_store_operation_duration_seconds_bucket", { collection: "chats", operation: "findOne" })
        .length > 0,
    );
    assert.equal(delta(s0, s1, "moleculer_request_total", { action: "chat.sendTo" }), 1);

    sa.ws.close(1000, "done");
    sb.ws.close(3000, "a code the server does not name");
    await Promise.all([sa.closed, sb.closed]);
    let s2 = await scrape(broker);
    for (let i = 0; i < 40 && s2.sum("social_ws_connections") !== 0; i += 1) {
      await new Promise((r) => setTimeout(r, 25));
      s2 = await scrape(broker);
    }
    assert.equal(s2.sum("social_ws_connections"), 0);
    assert.equal(delta(s0, s2, "social_ws_closes_total", { code: "1000" }), 1);
    assert.equal(delta(s0, s2, "social_ws_closes_total", { code: "other" }), 1);
    assert.equal(s2.find("social_ws_closes_total", { code: "3000" }).length, 0);
  });

  test("every line logged while handling a request carries its requestId and traceId", async () => {
    const requestId = `metrics-${Date.now()}`;
    const res = await fetch(`${url}/users/${aliceId}`, {
      headers: { authorization: `Bearer ${a.accessToken}`, "x-request-id": requestId },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-request-id"), requestId);
    await until(
      () => logs.lines.some((l) => l.requestId === requestId && l.msg === "request"),
      "request log",
    );
    const mine = logs.lines.filter((l) => l.requestId === requestId);
    assert.ok(
      mine.some((l) => String(l.msg).includes("Alias")),
      "moleculer-web's own line, logged without ids, gets them from the request",
    );
    for (const line of mine) {
      assert.equal(line.traceId, requestId);
      assert.equal(typeof line.spanId, "string");
    }
    assert.ok(
      logs.lines.some((l) => l.requestId === undefined && l.traceId === undefined),
      "lines outside requests have none",
    );
    await until(() => spans.some((s) => s.traceID === requestId && s.name.includes("profile.get")), "span");
  });
});

describe("circuit breaker metrics", () => {
  test("an opened circuit shows as an active breaker for the endpoint", async () => {
    const options = createBrokerOptions(
      loadConfig({
        NODE_ID: "cb-node",
        METRICS_ENABLED: "true",
        METRICS_PORT: "0",
        LOG_LEVEL: "fatal",
        RETRY_MAX: "0",
        CIRCUIT_BREAKER_MIN_REQUESTS: "2",
        CIRCUIT_BREAKER_THRESHOLD: "0.5",
      }),
    );
    const cb = new ServiceBroker(options);
    const opened: unknown[] = [];
    cb.createService({
      name: "flaky",
      actions: {
        fail: () => {
          throw new Errors.MoleculerError("down", 500, "DOWN");
        },
      },
      events: { "$circuit-breaker.opened": (ctx: Context) => void opened.push(ctx.params) },
    });
    await cb.start();
    try {
      for (let i = 0; i < 3; i += 1) await cb.call("flaky.fail").catch(() => undefined);
      await until(() => opened.length > 0, "$circuit-breaker.opened");
      const s = await scrape(cb);
      const labels = { affectedNodeID: "cb-node", service: "flaky", action: "flaky.fail" };
      assert.equal(s.sum("moleculer_circuit_breaker_opened_active", labels), 1);
      assert.equal(s.sum("moleculer_circuit_breaker_opened_total", labels), 1);
    } finally {
      await cb.stop();
    }
  });
});

describe("metrics of a cluster over NATS, Redis and FerretDB", () => {
  test("each node reports what happens in it: HTTP on the gateway, store and cache where the services run", async () => {
    const servers = await startServers();
    const cluster = await TestCluster.start(servers, { METRICS_ENABLED: "true", METRICS_PORT: "0" });
    try {
      const services = await cluster.add("services-1", ["auth", "profile", "chat"]);
      const gateway = await cluster.add("gateway-1", ["gateway"]);
      await waitReady(gateway.url);
      const [g0, s0] = await Promise.all([scrape(gateway.broker), scrape(services.broker)]);
      const client = new ApiClient(gateway.url);
      const id = (await client.register(newUser("mc"))).user.id;
      assert.equal((await client.raw("GET", `/users/${id}`)).status, 200);
      assert.equal((await client.raw("GET", `/users/${id}`)).status, 200);
      // The own profile is not the gateway's to keep: the profile node answers it from its copy.
      assert.equal((await client.raw("GET", "/users/me")).status, 200);
      const [g1, s1] = await Promise.all([scrape(gateway.broker), scrape(services.broker)]);

      const get = { route: "/users/:id", method: "GET", status: "2xx", node: "gateway-1" };
      assert.equal(delta(g0, g1, "social_http_request_duration_seconds_count", get), 2);
      // The second read of the profile is answered from the gateway's copy.
      assert.equal(delta(g0, g1, "social_gateway_profile_cache_lookups_total", { result: "miss" }), 1);
      assert.equal(delta(g0, g1, "social_gateway_profile_cache_lookups_total", { result: "hit" }), 1);
      assert.equal(g1.find("social_store_operation_duration_seconds_count").length, 0);
      assert.equal(
        delta(s0, s1, "moleculer_request_total", { action: "auth.register", node: "services-1" }),
        1,
      );
      assert.equal(delta(s0, s1, "social_profile_local_cache_lookups_total", { result: "miss" }), 1);
      assert.equal(delta(s0, s1, "social_profile_local_cache_lookups_total", { result: "hit" }), 1);
      assert.equal(delta(s0, s1, "moleculer_cacher_get_total"), 1);
      assert.equal(
        delta(s0, s1, "social_store_operation_duration_seconds_count", {
          collection: "accounts",
          operation: "insertOne",
          node: "services-1",
        }),
        1,
      );
      assert.equal(s1.find("social_http_request_duration_seconds_count").length, 0);
    } finally {
      await cluster.stop();
      await servers.stop();
    }
  });
});
