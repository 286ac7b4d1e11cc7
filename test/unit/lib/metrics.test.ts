import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type Context, ServiceBroker } from "moleculer";
import { DuplicateKeyError, RateLimitedError } from "../../../lib/errors.ts";
import { currentRequestContext, requestLogFields, runInRequestContext } from "../../../lib/log-context.ts";
import { labels, registerMetricTypes } from "../../../lib/metric-types.ts";
import { METRIC, metricsInScope, platformMetrics, RouteLabels } from "../../../lib/metrics.ts";
import { observabilityMiddleware } from "../../../lib/observability.ts";
import { PrometheusReporter } from "../../../lib/prometheus-reporter.ts";
import { RateLimit } from "../../../lib/rate-limiter.ts";
import { instrumentStore } from "../../../lib/store/instrumented.ts";
import { SqliteStore } from "../../../lib/store/sqlite.ts";
import { tempDir } from "../../support/platform.ts";
import { scrape } from "../../support/prometheus.ts";

function metricsBroker(nodeID: string): ServiceBroker {
  return new ServiceBroker({
    nodeID,
    logger: false,
    metrics: {
      enabled: true,
      reporter: [new PrometheusReporter({ port: 0, defaultLabels: () => ({ node: nodeID }) })],
    } as never,
    middlewares: [observabilityMiddleware],
  });
}

describe("PrometheusReporter", () => {
  let broker: ServiceBroker;
  before(() => {
    broker = metricsBroker("r1");
    return broker.start();
  });
  after(() => broker.stop());

  test("a histogram with buckets alone gets ascending buckets, +Inf, _sum and _count", async () => {
    const h = broker.metrics.register({
      name: "test_latency_seconds",
      type: "histogram",
      labelNames: ["op"],
      buckets: [0.5, 1, 2.5, 10],
    });
    h?.observe(0.2, { op: "a" });
    h?.observe(3, { op: "a" });
    const s = await scrape(broker);
    const buckets = s.find("test_latency_seconds_bucket", { op: "a" }).map((b) => [b.labels.le, b.value]);
    assert.deepEqual(buckets, [
      ["0.5", 1],
      ["1", 1],
      ["2.5", 1],
      ["10", 2],
      ["+Inf", 2],
    ]);
    assert.equal(s.sum("test_latency_seconds_sum", { op: "a", node: "r1" }), 3.2);
    assert.equal(s.sum("test_latency_seconds_count", { op: "a" }), 2);
    assert.equal(s.text.match(/# TYPE test_latency_seconds histogram/g)?.length, 1);
  });

  test("Moleculer's own metrics are still written as before", async () => {
    await broker.call("$node.health");
    const s = await scrape(broker);
    assert.equal(s.sum("moleculer_request_total", { action: "$node.health" }), 1);
    assert.ok(s.find("moleculer_request_time", { action: "$node.health", quantile: "0.5" }).length === 1);
  });
});

describe("fast metric types", () => {
  test("a bucket counts values up to and including its bound; +Inf counts all", async () => {
    registerMetricTypes();
    const broker = metricsBroker("f1");
    await broker.start();
    try {
      const h = broker.metrics.register({
        name: "fast_seconds",
        type: "BucketHistogram" as "histogram",
        labelNames: ["op"],
        buckets: [1, 2, 5],
      });
      const fixed = labels({ op: "x" });
      for (const v of [0.5, 1, 2, 2.1, 7]) h?.observe(v, fixed);
      const changing: Record<string, string> = { op: "y" };
      h?.observe(1, changing);
      changing.op = "z";
      h?.observe(1, changing);
      const c = broker.metrics.register({
        name: "fast_total",
        type: "FastCounter" as "counter",
        labelNames: ["op"],
      });
      c?.increment(fixed);
      c?.increment(fixed, 4);
      const s = await scrape(broker);
      const le = (op: string) => s.find("fast_seconds_bucket", { op }).map((b) => [b.labels.le, b.value]);
      assert.deepEqual(le("x"), [
        ["1", 2],
        ["2", 3],
        ["5", 4],
        ["+Inf", 5],
      ]);
      assert.equal(s.sum("fast_seconds_sum", { op: "x" }), 12.6);
      assert.equal(s.sum("fast_seconds_count", { op: "y" }), 1, "an unfrozen label object is hashed anew");
      assert.equal(s.sum("fast_seconds_count", { op: "z" }), 1);
      assert.equal(s.sum("fast_total", { op: "x" }), 5);
    } finally {
      await broker.stop();
    }
  });
});

describe("platform metrics", () => {
  test("are registered once per broker and not at all when metrics are off", async () => {
    const on = metricsBroker("m1");
    assert.equal(platformMetrics(on), platformMetrics(on));
    assert.ok(on.metrics.getMetric(METRIC.STORE_OPERATION_DURATION));
    const off = new ServiceBroker({ logger: false, metrics: false });
    assert.equal(platformMetrics(off), undefined);
    await Promise.all([on.stop(), off.stop()]);
  });

  test("route labels reuse one object per status class", () => {
    const labels = new RouteLabels("GET", "/users/:id");
    assert.equal(labels.of(200), labels.of(204));
    assert.deepEqual(labels.of(404), { method: "GET", route: "/users/:id", status: "4xx" });
    assert.equal(labels.of(503).status, "5xx");
  });
});

describe("the metrics scope of started()", () => {
  test("stores and rate limits built in started() record into that broker's metrics", async () => {
    const broker = metricsBroker("s1");
    const data = await tempDir();
    const seen: { scoped: boolean; limit?: RateLimit } = { scoped: false };
    broker.createService({
      name: "probe",
      async started() {
        seen.scoped = metricsInScope() === platformMetrics(broker);
        const store = instrumentStore(
          new SqliteStore({ file: path.join(data.dir, "probe.sqlite") }),
          metricsInScope(),
        );
        const things = store.collection<{ _id: string; n: number }>("things");
        await things.ensureIndexes([{ name: "n_unique", fields: { n: 1 }, unique: true }]);
        await things.insertOne({ _id: "a", n: 1 });
        await assert.rejects(things.insertOne({ _id: "b", n: 1 }), DuplicateKeyError);
        await things.findOne({ _id: "a" });
        await store.close();
        seen.limit = new RateLimit("probe-limit", { points: 1, duration: 60 }, undefined, "t");
      },
    });
    await broker.start();
    try {
      assert.equal(seen.scoped, true);
      assert.equal(metricsInScope(), undefined, "nothing leaks out of started()");
      await seen.limit?.consume("k");
      await assert.rejects(seen.limit?.consume("k") ?? Promise.resolve(), RateLimitedError);
      await assert.rejects(seen.limit?.check("k") ?? Promise.resolve(), RateLimitedError);
      const s = await scrape(broker);
      const of = (operation: string) => ({ collection: "things", operation });
      assert.equal(s.sum("social_store_operation_duration_seconds_count", of("insertOne")), 2);
      assert.equal(s.sum("social_store_operation_duration_seconds_count", of("findOne")), 1);
      assert.equal(s.sum("social_store_errors_total", of("insertOne")), 0, "a duplicate key is no failure");
      assert.equal(s.sum("social_rate_limit_rejections_total", { limit: "probe-limit" }), 2);
    } finally {
      await broker.stop();
      await data.remove();
    }
  });

  test("a store failure counts as an error of its collection and operation", async () => {
    const broker = metricsBroker("s2");
    await broker.start();
    try {
      const failing = {
        kind: "embedded" as const,
        collection: () => ({ name: "broken", count: () => Promise.reject(new Error("disk gone")) }),
        ping: () => Promise.resolve(),
        close: () => Promise.resolve(),
      };
      const store = instrumentStore(failing as never, platformMetrics(broker));
      await assert.rejects(store.collection("broken").count({}), /disk gone/);
      const s = await scrape(broker);
      assert.equal(s.sum("social_store_errors_total", { collection: "broken", operation: "count" }), 1);
      assert.equal(
        s.sum("social_store_operation_duration_seconds_count", { collection: "broken", operation: "count" }),
        1,
      );
    } finally {
      await broker.stop();
    }
  });
});

describe("request log fields", () => {
  test("name the ambient request, and nothing outside one", () => {
    assert.deepEqual(requestLogFields(), {});
    const ctx = { requestID: "req-1" } as Context;
    runInRequestContext(ctx, (c) => {
      assert.equal(currentRequestContext(), c);
      assert.deepEqual(requestLogFields(), { requestId: "req-1", traceId: "req-1" });
    });
    const traced = { requestID: "req-2", span: { id: "span-9", traceID: "req-2" } } as unknown as Context;
    runInRequestContext(traced, () =>
      assert.deepEqual(requestLogFields(), { requestId: "req-2", traceId: "req-2", spanId: "span-9" }),
    );
  });

  test("follow a call into nested actions of the same request", async () => {
    const broker = new ServiceBroker({ logger: false, middlewares: [observabilityMiddleware] });
    const seen: Record<string, string>[] = [];
    broker.createService({
      name: "outer",
      actions: {
        run: async (ctx: Context) => {
          seen.push(requestLogFields());
          await ctx.call("inner.run");
          seen.push(requestLogFields());
        },
      },
    });
    broker.createService({
      name: "inner",
      actions: {
        run: async () => {
          await new Promise((r) => setTimeout(r, 5));
          seen.push(requestLogFields());
        },
      },
    });
    await broker.start();
    try {
      await broker.call("outer.run", {}, { requestID: "abc" });
      assert.deepEqual(
        seen.map((f) => f.requestId),
        ["abc", "abc", "abc"],
      );
      assert.deepEqual(requestLogFields(), {});
    } finally {
      await broker.stop();
    }
  });
});
