/**
 * The platform's own Prometheus metrics, next to Moleculer's built-in ones (moleculer_request_*,
 * moleculer_cacher_*, moleculer_circuit_breaker_*) on the same `/metrics` of every node.
 *
 * Names follow Prometheus conventions: a `social_` prefix, base units (seconds), `_total` on
 * counters. Label values come from small fixed sets (route templates, status classes, collection
 * and operation names, limit names, known close codes), never from raw paths or ids. Label objects
 * are built once and frozen, and the counters and histograms are the faster types of
 * metric-types.ts, so recording on a hot path allocates nothing and costs well under a microsecond.
 *
 * Code that records metrics gets them from the broker (`platformMetrics(broker)`), or, when it is
 * built inside a service's `started()` without a broker at hand (stores, rate limits, the
 * WebSocket server), from the scope the metrics middleware opens around every `started()`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { MetricTypes, ServiceBroker } from "moleculer";
import { type BucketHistogram, type FastCounter, labels, registerMetricTypes } from "./metric-types.ts";

type Counter = FastCounter;
type Gauge = MetricTypes.Gauge;
type Histogram = BucketHistogram;
type Labels = Readonly<Record<string, string>>;

export const METRIC = {
  HTTP_REQUEST_DURATION: "social_http_request_duration_seconds",
  WS_CONNECTIONS: "social_ws_connections",
  WS_FRAMES_RECEIVED: "social_ws_frames_received_total",
  WS_FRAMES_SENT: "social_ws_frames_sent_total",
  WS_CLOSES: "social_ws_closes_total",
  CHAT_MESSAGES_STORED: "social_chat_messages_stored_total",
  CHAT_MESSAGES_DELIVERED: "social_chat_messages_delivered_total",
  CHAT_DELIVERY_LATENCY: "social_chat_delivery_latency_seconds",
  CHAT_DELIVERY_FAILURES: "social_chat_delivery_failures_total",
  STORE_OPERATION_DURATION: "social_store_operation_duration_seconds",
  STORE_ERRORS: "social_store_errors_total",
  RATE_LIMIT_REJECTIONS: "social_rate_limit_rejections_total",
  PROFILE_LOCAL_CACHE: "social_profile_local_cache_lookups_total",
  GATEWAY_PROFILE_CACHE: "social_gateway_profile_cache_lookups_total",
  FILE_BYTES: "social_file_bytes_total",
  MAIL_SENT: "social_mail_sent_total",
  MAIL_FAILED: "social_mail_failed_total",
  MAIL_RETRIES: "social_mail_retries_total",
  MAIL_QUEUE: "social_mail_queue",
  PUSH_SENT: "social_push_sent_total",
  HASH_SHED: "social_hash_shed_total",
  HASH_QUEUE: "social_hash_queue",
} as const;

/** Kinds of mail, the label values of the mail counters. */
export const MAIL_KINDS = [
  "verify-email",
  "email-change",
  "email-change-notice",
  "password-reset",
  "password-changed",
  "account-deleted",
] as const;
export type MailKindLabel = (typeof MAIL_KINDS)[number];

/** What became of one push to one subscription. */
export const PUSH_RESULTS = ["sent", "gone", "failed", "retried"] as const;
export type PushResult = (typeof PUSH_RESULTS)[number];

/** Bucket bounds in seconds. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const DELIVERY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Close codes counted under their own label; any other code a client sends counts as "other". */
const KNOWN_CLOSE_CODES = [1000, 1001, 1005, 1006, 1008, 1009, 1011, 1013, 4001, 4008];

const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

/** Labels of one HTTP route template, one object per status class, built on first use. */
export class RouteLabels {
  private readonly byClass: Labels[];

  constructor(method: string, route: string) {
    this.byClass = STATUS_CLASSES.map((status) => labels({ method, route, status }));
  }

  of(statusCode: number): Labels {
    const index = Math.min(Math.max(Math.floor(statusCode / 100) - 1, 0), 4);
    return this.byClass[index] as Labels;
  }
}

/** Every custom metric of one broker. Created by `platformMetrics` only when metrics are enabled. */
export class PlatformMetrics {
  readonly httpDuration: Histogram;
  readonly wsConnections: Gauge;
  readonly wsFramesReceived: Counter;
  readonly wsFramesSent: Counter;
  readonly chatMessagesStored: Counter;
  readonly chatDelivered: Counter;
  readonly chatDeliveryLatency: Histogram;
  readonly chatDeliveryFailures: Counter;
  readonly storeDuration: Histogram;
  readonly storeErrors: Counter;
  readonly rateLimitRejections: Counter;
  private readonly profileLocalCache: Counter;
  private readonly gatewayProfileCache: Counter;
  private readonly fileBytes: Counter;
  private readonly uploaded = labels({ direction: "upload" });
  private readonly downloaded = labels({ direction: "download" });
  private readonly localCacheHit = labels({ result: "hit" });
  private readonly localCacheMiss = labels({ result: "miss" });
  private readonly wsCloses: Counter;
  private readonly mailSent: Counter;
  private readonly mailFailed: Counter;
  private readonly mailRetries: Counter;
  private readonly mailQueue: Gauge;
  private readonly pushSent: Counter;
  private readonly hashShedCount: Counter;
  private readonly hashQueue: Gauge;
  private readonly mailLabels = new Map<string, Labels>(MAIL_KINDS.map((kind) => [kind, labels({ kind })]));
  private readonly pushLabels = new Map<string, Labels>(
    PUSH_RESULTS.map((result) => [result, labels({ result })]),
  );
  private readonly closeLabels = new Map<number, Labels>(
    KNOWN_CLOSE_CODES.map((code) => [code, labels({ code: String(code) })]),
  );
  private readonly otherClose = labels({ code: "other" });

  constructor(broker: ServiceBroker) {
    registerMetricTypes();
    const m = broker.metrics;
    const counter = (name: string, description: string, labelNames: string[] = []) =>
      m.register({ name, type: "FastCounter" as "counter", description, labelNames }) as unknown as Counter;
    const histogram = (name: string, description: string, buckets: number[], labelNames: string[] = []) =>
      m.register({
        name,
        type: "BucketHistogram" as "histogram",
        description,
        labelNames,
        buckets,
      }) as unknown as Histogram;

    this.httpDuration = histogram(
      METRIC.HTTP_REQUEST_DURATION,
      "HTTP requests by route template and status class, from arrival to the last byte sent",
      HTTP_BUCKETS,
      ["method", "route", "status"],
    );
    this.wsConnections = m.register({
      name: METRIC.WS_CONNECTIONS,
      type: "gauge",
      description: "Open WebSocket connections on this gateway",
    }) as Gauge;
    this.wsFramesReceived = counter(METRIC.WS_FRAMES_RECEIVED, "WebSocket frames received from clients");
    this.wsFramesSent = counter(METRIC.WS_FRAMES_SENT, "WebSocket frames written to client sockets");
    this.wsCloses = counter(METRIC.WS_CLOSES, "WebSocket connections closed, by close code", ["code"]);
    this.chatMessagesStored = counter(METRIC.CHAT_MESSAGES_STORED, "Chat messages stored (resends excluded)");
    this.chatDelivered = counter(
      METRIC.CHAT_MESSAGES_DELIVERED,
      "new_message frames written to a recipient's socket (one per socket)",
    );
    this.chatDeliveryLatency = histogram(
      METRIC.CHAT_DELIVERY_LATENCY,
      "From a message's createdAt (chat node clock) to the gateway writing it to a socket",
      DELIVERY_BUCKETS,
    );
    this.chatDeliveryFailures = counter(
      METRIC.CHAT_DELIVERY_FAILURES,
      "frames whose delivery call to a gateway failed (clients recover them by resume)",
    );
    this.storeDuration = histogram(
      METRIC.STORE_OPERATION_DURATION,
      "Store operations by collection and operation",
      STORE_BUCKETS,
      ["collection", "operation"],
    );
    this.storeErrors = counter(METRIC.STORE_ERRORS, "Store operations that failed", [
      "collection",
      "operation",
    ]);
    this.rateLimitRejections = counter(
      METRIC.RATE_LIMIT_REJECTIONS,
      "Requests or frames refused by a rate limit, by limit name",
      ["limit"],
    );
    this.fileBytes = counter(
      METRIC.FILE_BYTES,
      "Bytes of files uploaded (stored) and downloaded (sent) through this gateway",
      ["direction"],
    );
    this.mailSent = counter(METRIC.MAIL_SENT, "Mails handed to the SMTP server (or written to the outbox)", [
      "kind",
    ]);
    this.mailFailed = counter(
      METRIC.MAIL_FAILED,
      "Mails given up after every retry, or refused by a full queue",
      ["kind"],
    );
    this.mailRetries = counter(METRIC.MAIL_RETRIES, "Mail sends that failed and were queued to try again");
    this.mailQueue = m.register({
      name: METRIC.MAIL_QUEUE,
      type: "gauge",
      description: "Mails waiting to be sent (or retried) on this node",
    }) as Gauge;
    this.pushSent = counter(METRIC.PUSH_SENT, "Web pushes by result: sent, gone (404/410), failed, retried", [
      "result",
    ]);
    this.hashShedCount = counter(
      METRIC.HASH_SHED,
      "Password checks refused at once with 503 (the wait for a hashing slot would pass HASH_MAX_WAIT_MS)",
    );
    this.hashQueue = m.register({
      name: METRIC.HASH_QUEUE,
      type: "gauge",
      description: "Password checks waiting for a hashing slot on this node",
    }) as Gauge;
    this.profileLocalCache = counter(
      METRIC.PROFILE_LOCAL_CACHE,
      "Profile records looked up in the node's in-process cache (misses go on to the shared cacher)",
      ["result"],
    );
    this.gatewayProfileCache = counter(
      METRIC.GATEWAY_PROFILE_CACHE,
      "Public profiles (GET /users/:id) looked up in the gateway's copy (misses go on to a profile node)",
      ["result"],
    );
  }

  /** Bytes of files a gateway stored (an upload that succeeded) or sent (a download answer). */
  fileTransferred(direction: "upload" | "download", bytes: number): void {
    this.fileBytes.increment(direction === "upload" ? this.uploaded : this.downloaded, bytes);
  }

  /** A lookup in a profile node's in-process cache. */
  profileLocalLookup(hit: boolean): void {
    this.profileLocalCache.increment(hit ? this.localCacheHit : this.localCacheMiss);
  }

  /** A lookup in a gateway's copy of the public profiles it read. */
  gatewayProfileLookup(hit: boolean): void {
    this.gatewayProfileCache.increment(hit ? this.localCacheHit : this.localCacheMiss);
  }

  mailSentOne(kind: MailKindLabel): void {
    this.mailSent.increment(this.mailLabels.get(kind));
  }

  mailFailedOne(kind: MailKindLabel): void {
    this.mailFailed.increment(this.mailLabels.get(kind));
  }

  mailRetried(): void {
    this.mailRetries.increment();
  }

  mailQueued(length: number): void {
    this.mailQueue.set(length);
  }

  pushed(result: PushResult): void {
    this.pushSent.increment(this.pushLabels.get(result));
  }

  hashShed(): void {
    this.hashShedCount.increment();
  }

  hashQueued(waiting: number): void {
    this.hashQueue.set(waiting);
  }

  wsClosed(code: number): void {
    this.wsCloses.increment(this.closeLabels.get(code) ?? this.otherClose);
  }
}

const byBroker = new WeakMap<ServiceBroker, PlatformMetrics>();

/** The broker's custom metrics, registered on first use; undefined when metrics are disabled. */
export function platformMetrics(broker: ServiceBroker): PlatformMetrics | undefined {
  if (!broker.isMetricsEnabled()) return undefined;
  let metrics = byBroker.get(broker);
  if (!metrics) {
    metrics = new PlatformMetrics(broker);
    byBroker.set(broker, metrics);
  }
  return metrics;
}

const startScope = new AsyncLocalStorage<PlatformMetrics>();

/** Runs fn (a service's `started()`) with the broker's metrics as the ambient ones. */
export function withMetricsScope<T>(metrics: PlatformMetrics | undefined, fn: () => T): T {
  return metrics ? startScope.run(metrics, fn) : fn();
}

/** The metrics of the broker whose service is starting, if any (see withMetricsScope). */
export function metricsInScope(): PlatformMetrics | undefined {
  return startScope.getStore();
}
