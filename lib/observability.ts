/**
 * The broker middleware behind the platform's metrics and request-scoped logs:
 *
 * - every local action and event handler runs with its Context as the ambient request, so the
 *   Pino mixin (lib/log-context.ts) stamps requestId/traceId on each line logged meanwhile;
 * - every service's started() runs with the node's metrics in scope, so stores, rate limits and
 *   the WebSocket server built there record into them without being handed the broker;
 * - the moleculer-web `rest` action (one call per HTTP request) is timed from its start to the
 *   response's last byte, labelled by the matched route template and the status class.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Middleware, ServiceBroker, ServiceSchema } from "moleculer";
import { runInRequestContext } from "./log-context.ts";
import { type PlatformMetrics, platformMetrics, RouteLabels, withMetricsScope } from "./metrics.ts";

type Handler = (ctx: Context) => unknown;
type StartedHook = (this: unknown, ...args: unknown[]) => unknown;
type Alias = { method: string; fullPath: string };
type Req = IncomingMessage & { $alias?: Alias };

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const STARTED_AT = Symbol("observability.startedAt");

/** Registered in broker.config.ts; each hook runs with `this` bound to the broker. */
export const observabilityMiddleware = {
  name: "Observability",
  serviceCreating(this: ServiceBroker, _service: unknown, schema: ServiceSchema): void {
    const metrics = platformMetrics(this);
    if (metrics) scopeStarted(schema, metrics);
  },
  localAction(this: ServiceBroker, next: Handler, action: { rawName?: string; service?: unknown }): Handler {
    const inRequest = (ctx: Context) => runInRequestContext(ctx, next);
    const metrics = platformMetrics(this);
    if (!metrics || !isRestAction(action)) return inRequest;
    const timeHttp = httpTimerOf(metrics);
    return (ctx: Context) => {
      const res = (ctx.params as { res?: ServerResponse }).res;
      if (res) timeHttp(res);
      return inRequest(ctx);
    };
  },
  localEvent(next: Handler): Handler {
    return (ctx: Context) => runInRequestContext(ctx, next);
  },
} as unknown as Middleware;

/** moleculer-web's entry action: the `rest` action of a service that serves HTTP. */
function isRestAction(action: { rawName?: string; service?: unknown }): boolean {
  const service = action.service as { httpHandler?: unknown } | undefined;
  return action.rawName === "rest" && typeof service?.httpHandler === "function";
}

function scopeStarted(schema: ServiceSchema, metrics: PlatformMetrics): void {
  const wrap = (fn: StartedHook): StartedHook =>
    function (this: unknown, ...args: unknown[]) {
      return withMetricsScope(metrics, () => fn.apply(this, args));
    };
  const started = schema.started as StartedHook | StartedHook[] | undefined;
  if (typeof started === "function") schema.started = wrap(started) as ServiceSchema["started"];
  else if (Array.isArray(started)) schema.started = started.map(wrap) as ServiceSchema["started"];
}

/**
 * Times a request served beside the `rest` action (the file routes, gateway/files/), under its
 * route template, like every other route.
 */
export function timeHttpRequest(
  metrics: PlatformMetrics | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  route: Alias,
): void {
  if (!metrics) return;
  (req as Req).$alias ??= route;
  httpTimerOf(metrics)(res);
}

const httpTimers = new WeakMap<PlatformMetrics, (res: ServerResponse) => void>();

function httpTimerOf(metrics: PlatformMetrics): (res: ServerResponse) => void {
  let timer = httpTimers.get(metrics);
  if (!timer) {
    timer = httpTimer(metrics);
    httpTimers.set(metrics, timer);
  }
  return timer;
}

/** Starts the clock of one response; its `finish` records route, status class and duration. */
function httpTimer(metrics: PlatformMetrics): (res: ServerResponse) => void {
  const byAlias = new WeakMap<Alias, RouteLabels>();
  const unmatched = new Map(HTTP_METHODS.map((m) => [m, new RouteLabels(m, "unmatched")]));
  const preflight = new RouteLabels("OPTIONS", "preflight");
  const other = new RouteLabels("OTHER", "unmatched");

  const labelsOf = (req: Req): RouteLabels => {
    const alias = req.$alias;
    if (!alias) return req.method === "OPTIONS" ? preflight : (unmatched.get(req.method ?? "") ?? other);
    let labels = byAlias.get(alias);
    if (!labels) {
      const method = alias.method === "*" ? "ANY" : alias.method;
      labels = new RouteLabels(method, alias.fullPath);
      byAlias.set(alias, labels);
    }
    return labels;
  };

  function finished(this: ServerResponse & { [STARTED_AT]?: number }): void {
    const start = this[STARTED_AT];
    if (start === undefined) return;
    metrics.httpDuration.observe(
      (performance.now() - start) / 1000,
      labelsOf(this.req as Req).of(this.statusCode),
    );
  }

  return (res: ServerResponse & { [STARTED_AT]?: number }) => {
    if (res[STARTED_AT] !== undefined) return;
    res[STARTED_AT] = performance.now();
    res.on("finish", finished);
  };
}
