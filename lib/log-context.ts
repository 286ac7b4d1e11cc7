/**
 * The request a log line belongs to. The metrics middleware runs every action and event handler
 * with its Moleculer Context as the ambient one; the Pino `mixin` below adds that context's ids to
 * every line logged meanwhile, by any logger, without passing ids around:
 *
 *   requestId  ctx.requestID: the X-Request-Id a REST client sent or was given, kept by every call
 *              made on its behalf across nodes
 *   traceId    the trace the line belongs to; Moleculer's tracer uses the request id as trace id
 *   spanId     the current action's span, when tracing is on
 *
 * Lines logged outside any request (start-up, timers started at start) carry none of them.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context } from "moleculer";

const requestScope = new AsyncLocalStorage<Context>();

/** Calls handler(ctx) with ctx as the request of every line it logs. */
export function runInRequestContext<C extends Context, T>(ctx: C, handler: (ctx: C) => T): T {
  return requestScope.run(ctx, handler, ctx);
}

export function currentRequestContext(): Context | undefined {
  return requestScope.getStore();
}

/**
 * Pino's `mixin` option: the fields above, or none outside a request. A new object each time:
 * Pino merges the line's own fields into it, so an explicit `requestId` on a line wins.
 */
export function requestLogFields(): Record<string, string> {
  const ctx = requestScope.getStore();
  if (!ctx?.requestID) return {};
  const span = (ctx as { span?: { id: string; traceID: string } }).span;
  return span
    ? { requestId: ctx.requestID, traceId: span.traceID, spanId: span.id }
    : { requestId: ctx.requestID, traceId: ctx.requestID };
}
