/**
 * The one BrokerOptions of every node, built from env vars (see lib/config.ts for the list, its
 * defaults and meanings). moleculer-runner loads this file's default export; tests build brokers
 * from `createBrokerOptions(loadConfig(env))` so every node of a test cluster is configured the same
 * way as in production.
 *
 * Fault tolerance is on and tuned rather than left at Moleculer's defaults (all off, no timeout):
 * every call has a timeout; only retryable errors are retried, with backoff, and actions that are
 * not idempotent switch retries off in their own schema; a circuit breaker per endpoint stops
 * calling a failing node; password hashing runs behind the auth node's admission gate
 * (services/auth/hash-admission.ts), which answers 503 at once rather than queue for long.
 *
 * Observability (docs/observability.md): Prometheus metrics on METRICS_PORT of every node,
 * Moleculer's built-in ones plus the platform's own (lib/metrics.ts); Pino JSON logs whose lines
 * carry the requestId/traceId of the request being handled, written without ever blocking the
 * event loop (lib/log-destination.ts); Moleculer's tracer when
 * TRACING_EXPORTER names an exporter.
 */
import type { BrokerOptions, Errors } from "moleculer";
import { loadConfig, type PlatformConfig } from "./lib/config.ts";
import { ConfigError } from "./lib/env.ts";
import { requestLogFields } from "./lib/log-context.ts";
import { logDestination } from "./lib/log-destination.ts";
import { observabilityMiddleware } from "./lib/observability.ts";
import { PLATFORM_CONFIG } from "./lib/platform.ts";
import { PrometheusReporter } from "./lib/prometheus-reporter.ts";
import { clusterNodes } from "./lib/redis.ts";

export function createBrokerOptions(config: PlatformConfig): BrokerOptions {
  return {
    namespace: config.namespace,
    nodeID: config.nodeId,
    logger: {
      type: "Pino",
      options: {
        level: config.logLevel,
        pino: {
          options: { base: { node: config.nodeId }, mixin: requestLogFields },
          destination: logDestination(),
        },
      },
    },
    transporter: config.transporter
      ? {
          type: "NATS",
          options: { url: config.transporter, maxReconnectAttempts: -1, reconnectTimeWait: 250 },
        }
      : null,
    // INFO goes out as each local service registers, not a second later: a gateway that accepts
    // sockets before the chat nodes know its `gateway.deliver` would miss their live messages.
    transit: { serviceChangedDebounceTime: 0 },
    // JSON: of Moleculer's serializers with a maintained package (CBOR by cbor-x, Notepack by
    // notepack.io, MsgPack by msgpack5), the fastest on this platform's packets by far, measured
    // in one run by bench/serializers.ts (docs/benchmarks.md, "Serializers"): the binary ones save
    // a tenth of the bytes and take 1.5 to 9 times as long to encode and decode.
    serializer: "JSON",
    requestTimeout: config.requestTimeoutMs,
    retryPolicy: {
      enabled: config.retryMax > 0,
      retries: config.retryMax,
      delay: 100,
      maxDelay: 1_000,
      factor: 2,
      check: (err: Error) => Boolean((err as Errors.MoleculerError).retryable),
    },
    circuitBreaker: {
      enabled: true,
      threshold: config.circuitBreaker.threshold,
      minRequestCount: config.circuitBreaker.minRequests,
      windowTime: config.circuitBreaker.windowS,
      halfOpenTime: config.circuitBreaker.halfOpenMs,
      // A hash refused for overload (HASHING_BUSY) is the node shedding load, not failing: it must
      // not open the circuit and turn every password route away.
      check: (err: Error) =>
        ((err as Errors.MoleculerError).code ?? 500) >= 500 &&
        (err as Errors.MoleculerError).type !== "HASHING_BUSY",
    },
    bulkhead: { enabled: false },
    heartbeatInterval: 5,
    heartbeatTimeout: 15,
    registry: { strategy: "RoundRobin", preferLocal: true },
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    cacher: cacherOptions(config),
    validator: true,
    metrics: metricsOptions(config),
    tracing: tracingOptions(config),
    middlewares: [observabilityMiddleware],
    [PLATFORM_CONFIG]: config,
  } as BrokerOptions;
}

/**
 * Moleculer's Redis cacher on REDIS_URL, or on the Redis Cluster of REDIS_CLUSTER_NODES (the
 * same fail-fast client options as lib/redis.ts; every cache key is a key of its own, so no
 * command spans slots); in memory on a node with neither.
 */
function cacherOptions(config: PlatformConfig): BrokerOptions["cacher"] {
  const common = { prefix: `${config.namespace}-cache`, ttl: config.profileCacheTtlS };
  if (config.redisClusterNodes.length > 0) {
    const { nodes, auth } = clusterNodes(config.redisClusterNodes);
    const redisOptions = { ...auth, maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 1_000 };
    return {
      type: "Redis",
      options: {
        ...common,
        cluster: {
          nodes,
          options: {
            enableOfflineQueue: false,
            clusterRetryStrategy: (times: number) => Math.min(times * 200, 2_000),
            retryDelayOnFailover: 200,
            retryDelayOnClusterDown: 200,
            maxRedirections: 3,
            slotsRefreshInterval: 5_000,
            redisOptions,
          },
        },
      },
    } as BrokerOptions["cacher"];
  }
  // Moleculer's types want an options object for `redis`; the cacher takes a URL too.
  if (config.redisUrl)
    return {
      type: "Redis",
      options: { ...common, redis: config.redisUrl },
    } as unknown as BrokerOptions["cacher"];
  return { type: "MemoryLRU", options: { max: 10_000, ttl: config.profileCacheTtlS } };
}

/** Prometheus on METRICS_PORT, through the reporter that also writes _sum/_count of bucket histograms. */
function metricsOptions(config: PlatformConfig): BrokerOptions["metrics"] {
  if (!config.metricsEnabled) return { enabled: false };
  const reporter = new PrometheusReporter({
    port: config.metricsPort,
    path: "/metrics",
    defaultLabels: () => ({ node: config.nodeId }),
  });
  return { enabled: true, reporter: [reporter] } as unknown as BrokerOptions["metrics"];
}

/** Moleculer's tracer, on when TRACING_EXPORTER names one of its exporters that need no extra package. */
function tracingOptions(config: PlatformConfig): BrokerOptions["tracing"] {
  const { exporter, sampleRate, zipkinUrl } = config.tracing;
  if (exporter === "none") return { enabled: false };
  const exporters = {
    console: { type: "Console", options: { logger: null, colors: false, width: 100 } },
    event: { type: "Event", options: { eventName: "$tracing.spans", interval: 1 } },
    zipkin: { type: "Zipkin", options: { baseURL: zipkinUrl, interval: 5 } },
  } as const;
  return {
    enabled: true,
    exporter: [exporters[exporter]],
    sampling: { rate: sampleRate },
    events: true,
    errorFields: ["name", "message", "code", "type"],
    defaultTags: { node: config.nodeId },
  } as BrokerOptions["tracing"];
}

/**
 * moleculer-runner overwrites every option whose upper-cased path names an env var that is set:
 * TRANSPORTER would replace the NATS options above with the bare URL (and its reconnect settings
 * with nats.js defaults), TRACING_EXPORTER the exporter with its bare name (dropping
 * TRACING_ZIPKIN_URL). Those options are already built from these very variables, so the runner is
 * kept from rewriting them: the properties read as built and ignore writes.
 */
export function keptFromRunner(options: BrokerOptions): BrokerOptions {
  const keep = (target: Record<string, unknown>, key: string) => {
    const value = target[key];
    if (value === undefined) return;
    Object.defineProperty(target, key, {
      enumerable: true,
      configurable: true,
      get: () => value,
      set: () => undefined,
    });
  };
  const target = options as Record<string, unknown>;
  keep(target, "transporter");
  const tracing = target.tracing as Record<string, unknown> | undefined;
  if (tracing) keep(tracing, "exporter");
  keep(target, "tracing");
  return options;
}

function fromEnv(): BrokerOptions {
  try {
    return keptFromRunner(createBrokerOptions(loadConfig(process.env)));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export default fromEnv();
