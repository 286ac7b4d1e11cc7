/** moleculer-runner rewrites options from env vars of the same name; the platform's config keeps its own. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Runner, ServiceBroker } from "moleculer";
import { createBrokerOptions, keptFromRunner } from "../../../broker.config.ts";
import { loadConfig } from "../../../lib/config.ts";

const env = {
  TRANSPORTER: "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
  TRACING_EXPORTER: "zipkin",
  TRACING_ZIPKIN_URL: "http://zipkin.example:9411",
};
const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
after(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

type Overwriter = { overwriteFromEnv(options: unknown): Record<string, unknown> };
const runner = () => new (Runner as unknown as new () => Overwriter)();

test("the runner's env overwrite keeps the NATS options and the tracing exporter built from the same env", () => {
  Object.assign(process.env, env);
  const options = runner().overwriteFromEnv(keptFromRunner(createBrokerOptions(loadConfig(env))));
  assert.deepEqual(options.transporter, {
    type: "NATS",
    options: { url: env.TRANSPORTER, maxReconnectAttempts: -1, reconnectTimeWait: 250 },
  });
  const tracing = options.tracing as { exporter: { type: string; options: { baseURL: string } }[] };
  assert.equal(tracing.exporter[0]?.type, "Zipkin");
  assert.equal(tracing.exporter[0]?.options.baseURL, env.TRACING_ZIPKIN_URL);

  // What the runner does to the options as built, without the guard: the reason for it.
  const bare = runner().overwriteFromEnv(createBrokerOptions(loadConfig(env)));
  assert.equal(bare.transporter, env.TRANSPORTER);
  assert.equal((bare.tracing as { exporter: unknown }).exporter, "zipkin");
});

test("a broker built from the guarded options gets them", async () => {
  const config = loadConfig({ TRACING_EXPORTER: "event", METRICS_ENABLED: "false", LOG_LEVEL: "fatal" });
  const broker = new ServiceBroker(keptFromRunner(createBrokerOptions(config)));
  const exporters = (broker.tracer as unknown as { exporter: { constructor: { name: string } }[] }).exporter;
  assert.deepEqual(
    exporters.map((e) => e.constructor.name),
    ["EventTraceExporter"],
  );
  await broker.stop();
});
