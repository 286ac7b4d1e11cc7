/**
 * The gateway node role: REST through moleculer-web, built only from the route table in
 * routes.ts (no auto-aliases, so nothing internal such as $node.* is reachable), with access
 * tokens verified locally, one error mapping, request ids, compression, CORS, health and OpenAPI.
 * Before any route runs, a known path answers a method it does not take 405 with `Allow`, and
 * OPTIONS (a CORS preflight or not) without running an action (method-table.ts); bodies and
 * queries pass the checks of request-body.ts.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import compression from "compression";
import type { JSONWebKeySet } from "jose";
import { type Context, Service, type ServiceBroker, Strategies } from "moleculer";
import ApiGateway from "moleculer-web";
import {
  broadcast,
  type CallMeta,
  call,
  PARAMS,
  type PresenceStamp,
  type Revocation,
  type ServerFrame,
} from "../lib/contracts.ts";
import {
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationFailedError,
} from "../lib/errors.ts";
import { openBlobStore } from "../lib/files/index.ts";
import { platformMetrics } from "../lib/metrics.ts";
import { platformConfig } from "../lib/platform.ts";
import { AccessTokenVerifier } from "./access-tokens.ts";
import { AccountExport } from "./account-export.ts";
import { clientIpResolver } from "./client-ip.ts";
import { toHttpError } from "./error-mapping.ts";
import { FileRoutes } from "./files/file-routes.ts";
import { MethodTable } from "./method-table.ts";
import { buildOpenApi } from "./openapi.ts";
import { PublicProfiles } from "./public-profiles.ts";
import { Readiness } from "./readiness.ts";
import { assertNoNulls, bodyAndQueryChecks, jsonBodyParser, nonNullableFields } from "./request-body.ts";
import { locationOf, ROUTES, type RouteDef } from "./routes.ts";
import { faviconHandler, webClientAssets } from "./web-client.ts";
import { WsServer } from "./ws-server.ts";

/** Services this gateway fronts; it is ready once each is discovered and answers. */
const NEEDED_SERVICES = ["auth", "profile", "chat"];
const SYNC_INTERVAL_MS = 30_000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** One frame for some users' sockets (gateway.deliver, and each item of gateway.deliverMany). */
const DELIVERY = { userIds: { type: "array", items: "string" }, frame: "object" } as const;

/** An action's endpoint as moleculer-web keeps it on the request. */
interface ActionEndpoint {
  action: unknown;
}
type Req = IncomingMessage & {
  $alias?: { action?: string };
  $ctx?: Context<unknown, CallMeta>;
  $params?: Record<string, unknown>;
  $endpoint?: ActionEndpoint;
  $action?: unknown;
};
type Ctx = Context<unknown, CallMeta>;
type RestCtx = Context<{ req: Req; res: ServerResponse }, CallMeta>;

/** Paths served by the health route below, besides those of ROUTES. */
const PLAIN_ROUTES = ["/health/live", "/health/ready", "/openapi.json", "/favicon.ico"].map((path) => ({
  method: "GET",
  path,
}));
/** moleculer-web's own entry action, which the gateway's `rest` runs after its method checks. */
const routeRequest = (ApiGateway as unknown as { actions: { rest: { handler: (ctx: RestCtx) => unknown } } })
  .actions.rest.handler;
/** moleculer-web's HTTP request listener, which file transfers bypass (files/file-routes.ts). */
const moleculerWebHandler = (
  ApiGateway as unknown as {
    methods: { httpHandler: (this: unknown, req: Req, res: ServerResponse, next?: unknown) => unknown };
  }
).methods.httpHandler;

export default class GatewayService extends Service {
  private verifier!: AccessTokenVerifier;
  private readiness!: Readiness;
  private readonly profiles: PublicProfiles;
  private ws!: WsServer;
  /** Uploads and downloads (files/file-routes.ts), once the blob store is open. */
  private files: FileRoutes | undefined;
  private exporter: AccountExport | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  /** HTTP requests being answered, and what waits for them to be done (the drain). */
  private httpInFlight = 0;
  private httpIdle: Array<() => void> = [];
  /** This process's online/offline announcements so far (services/chat/presence-map.ts). */
  private readonly presenceStamp: PresenceStamp = { instance: randomUUID(), version: 0 };

  constructor(broker: ServiceBroker) {
    super(broker);
    const config = platformConfig(broker);
    const clientIp = clientIpResolver(config.trustedProxies);
    const metrics = platformMetrics(broker);
    const debugLogs = config.logLevel === "debug" || config.logLevel === "trace";
    this.profiles = new PublicProfiles({
      ttlMs: config.profileLocalCacheTtlS * 1000,
      onLookup: metrics && ((hit) => metrics.gatewayProfileLookup(hit)),
    });
    const byAction = new Map<string, RouteDef>(ROUTES.map((r) => [r.action, r]));
    const nonNullable = new Map(
      ROUTES.map((r) => [
        r.action,
        nonNullableFields((PARAMS as unknown as Record<string, Record<string, unknown>>)[r.action] ?? {}),
      ]),
    );
    const openApi = JSON.stringify(buildOpenApi(config));
    const methods = new MethodTable([
      ...ROUTES,
      ...PLAIN_ROUTES,
      ...FileRoutes.ROUTES,
      ...AccountExport.ROUTES,
    ]);
    // moleculer-web's CORS answer (headers, and 204 for a preflight), when CORS_ORIGINS is set.
    const corsPreflight = config.corsOrigins.length
      ? (req: Req, res: ServerResponse) =>
          (this as unknown as { corsHandler(s: unknown, q: Req, r: ServerResponse): boolean }).corsHandler(
            this.settings,
            req,
            res,
          )
      : undefined;
    const favicon = faviconHandler();

    // A GET route answers HEAD too: the same action, and Node sends no body for a HEAD.
    const aliases = (auth: boolean) =>
      Object.fromEntries(
        ROUTES.filter((r) => r.auth === auth).flatMap((r) => [
          [`${r.method} ${r.path}`, r.action],
          ...(r.method === "GET" ? [[`HEAD ${r.path}`, r.action]] : []),
        ]),
      );
    const plain = (path: string, handler: (req: Req, res: ServerResponse) => void) => ({
      [`GET ${path}`]: handler,
      [`HEAD ${path}`]: handler,
    });

    const apiRoute = (auth: boolean) => ({
      name: auth ? "authenticated" : "public",
      path: "/",
      mappingPolicy: "restrict",
      autoAliases: false,
      // moleculer-web's own lines for each request (this gateway logs one per answer itself): at
      // debug only, and not even built otherwise, as their colouring was about a tenth of a
      // request's garbage (docs/benchmarks.md, "GET /users/:id answered at the gateway").
      logging: debugLogs,
      authentication: auth,
      mergeParams: true,
      bodyParsers: false,
      use: [jsonBodyParser(config.bodyLimitBytes), bodyAndQueryChecks()],
      aliases: aliases(auth),
      onBeforeCall: async (ctx: Ctx, _route: unknown, req: Req) => {
        await this.assertReady();
        this.reshard(ctx, req);
        ctx.meta.clientIp = clientIp(req);
        ctx.meta.userAgent = String(req.headers["user-agent"] ?? "").slice(0, 256);
        const def = req.$alias?.action ? byAction.get(req.$alias.action) : undefined;
        if (def) ctx.meta.$statusCode = def.status;
        if (def?.bodyParams && (req.url ?? "").includes("?")) {
          throw new ValidationFailedError([
            {
              field: "query",
              type: "queryNotAllowed",
              message: "This route takes its fields in a JSON body, never in the URL",
            },
          ]);
        }
        if (def)
          assertNoNulls(
            nonNullable.get(def.action) ?? [],
            (req as { $params?: Record<string, unknown> }).$params ?? {},
          );
      },
      onAfterCall: (ctx: Ctx, _route: unknown, req: Req, _res: ServerResponse, data: unknown) => {
        const def = req.$alias?.action ? byAction.get(req.$alias.action) : undefined;
        if (def?.location) (ctx.meta as { $location?: string }).$location = locationOf(def.location, data);
        this.logger.info(
          {
            requestId: ctx.requestID,
            method: req.method,
            url: req.url,
            status: ctx.meta.$statusCode ?? def?.status,
          },
          "request",
        );
        return def?.status === 204 || def?.status === 202 ? null : data;
      },
    });

    this.parseServiceSchema({
      name: "gateway",
      mixins: [ApiGateway],
      settings: {
        port: config.port,
        ip: config.host,
        use: [compression({ threshold: 1024 })],
        // The web client's files, served only for requests that no route below matched.
        assets: webClientAssets(),
        rootCallOptions: (
          options: { requestID?: string; timeout?: number },
          req: Req,
          res: ServerResponse,
        ) => {
          options.requestID = this.beginRequest(req, res);
          // The whole request, the calls it makes and their retries included, ends within the
          // request timeout: the calls get what is left of it (Moleculer's distributed timeout).
          options.timeout = config.requestTimeoutMs;
        },
        cors: config.corsOrigins.length
          ? {
              origin: config.corsOrigins,
              methods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
              allowedHeaders: [
                "Authorization",
                "Content-Type",
                "X-Request-Id",
                "Range",
                "If-None-Match",
                "If-Range",
              ],
              exposedHeaders: [
                "X-Request-Id",
                "Retry-After",
                "WWW-Authenticate",
                "Location",
                "Content-Range",
                "Content-Length",
                "Content-Disposition",
                "Accept-Ranges",
                "ETag",
              ],
              credentials: false,
              maxAge: 600,
            }
          : undefined,
        routes: [
          {
            name: "health",
            path: "/",
            logging: debugLogs,
            mappingPolicy: "restrict",
            autoAliases: false,
            bodyParsers: false,
            aliases: {
              ...plain("/health/live", (_req, res) => sendJson(res, 200, { status: "ok" })),
              ...plain("/health/ready", (_req, res) => void this.sendReadiness(res)),
              ...plain("/openapi.json", (_req, res) => {
                res.setHeader("Content-Type", "application/json; charset=utf-8");
                res.end(openApi);
              }),
              ...plain("/favicon.ico", (req, res) => favicon(req, res, () => this.answerNotFound(req, res))),
            },
          },
          apiRoute(false),
          apiRoute(true),
        ],
        onError: (req: Req, res: ServerResponse, err: unknown) => this.answerError(req, res, err),
        log4XXResponses: false,
        logRequest: "debug",
        logResponse: "debug",
        logRequestParams: null,
        logResponseData: null,
      } as Record<string, unknown>,
      methods: {
        // File transfers stream for as long as they take, outside the request timeout of an
        // action call, and past moleculer-web's body handling; everything else goes to it.
        httpHandler: (req: Req, res: ServerResponse, next?: unknown) => {
          this.trackRequest(res);
          if (this.files?.handles(req)) {
            this.beginRequest(req, res);
            try {
              if (methods.answer(req, res, corsPreflight)) return;
            } catch (err) {
              // 405 with Allow: answered like any refused request, body unread.
              return this.files.fail(req, res, err);
            }
            return this.files.serve(req, res);
          }
          if (this.exporter?.handles(req)) {
            this.beginRequest(req, res);
            try {
              if (methods.answer(req, res, corsPreflight)) return;
            } catch (err) {
              return this.answerError(req, res, err);
            }
            return this.exporter.serve(req, res);
          }
          return moleculerWebHandler.call(this, req, res, next);
        },
        authenticate: (_ctx: Ctx, _route: unknown, req: Req) => this.authenticateRequest(req),
        errorHandler: (req: Req, res: ServerResponse, err: unknown) => this.answerError(req, res, err),
      },
      actions: {
        // An HTTP request is neither retried whole (its calls retry only what is idempotent) nor
        // behind a circuit of its own: the circuits that matter are those of the nodes it calls.
        rest: {
          retryPolicy: { enabled: false },
          circuitBreaker: { enabled: false },
          handler: (ctx: RestCtx) =>
            methods.answer(ctx.params.req, ctx.params.res, corsPreflight) || routeRequest.call(this, ctx),
        },
        deliver: {
          visibility: "public",
          params: DELIVERY,
          handler: (ctx: Context<{ userIds: string[]; frame: ServerFrame }>) => ({
            delivered: this.ws.deliver(ctx.params.userIds, ctx.params.frame),
          }),
        },
        // What chat nodes send: the frames of one moment for this gateway, in order.
        deliverMany: {
          visibility: "public",
          params: { deliveries: { type: "array", items: { type: "object", props: DELIVERY } } },
          handler: (ctx: Context<{ deliveries: { userIds: string[]; frame: ServerFrame }[] }>) => {
            return { delivered: this.ws.deliverMany(ctx.params.deliveries) };
          },
        },
        connectedUsers: {
          visibility: "public",
          handler: () => ({ userIds: this.ws.connectedUsers(), ...this.presenceStamp }),
        },
      },
      events: {
        "auth.sessions.revoked": {
          handler: (ctx: Context<{ revocations: Revocation[] }>) => {
            this.verifier.revoke(ctx.params.revocations);
            this.ws.closeSessions(ctx.params.revocations.map((r) => r.sessionId));
          },
        },
        "auth.keys.rotated": { handler: () => this.syncKeys() },
        "profile.cache.clean": {
          handler: (ctx: Context<{ ids: string[] }>) => this.profiles.drop(ctx.params.ids),
        },
      },
      created: () => {
        // The drain starts with the broker's stop, before Moleculer waits for the requests in
        // flight: otherwise open keep-alive connections and sockets keep bringing new work.
        this.broker.middlewares.add({ name: "GatewayDrain", stopping: () => this.drain() });
        this.broker.middlewares.add(this.profiles.middleware());
        this.verifier = new AccessTokenVerifier({
          issuer: config.jwt.issuer,
          audience: config.jwt.audience,
          fetchJwks: async () => (await call(this.broker, "auth.jwks", {})) as unknown as JSONWebKeySet,
          fetchRevocations: async () => (await call(this.broker, "auth.revocations", {})).revocations,
        });
        this.readiness = new Readiness({
          services: NEEDED_SERVICES,
          isDiscovered: (name) =>
            this.broker.registry
              .getServiceList({ onlyAvailable: true, skipInternal: true })
              .some((s: { name: string }) => s.name === name),
          // Ready when any instance answers: one dead node among several must not take the
          // gateway out (it stays in the registry until its heartbeat times out).
          ping: async (name) => {
            const list = this.broker.registry.getActionEndpoints(`${name}.ready`) as unknown as
              | { endpoints: { id: string; isAvailable: boolean }[] }
              | undefined;
            const nodeIds = (list?.endpoints ?? []).filter((ep) => ep.isAvailable).map((ep) => ep.id);
            await Promise.any(
              nodeIds.map((nodeID) =>
                this.broker.call(`${name}.ready`, {}, { nodeID, timeout: 2_000, retries: 0 }),
              ),
            );
          },
          ensureKeys: () => (this.verifier.hasKeys ? Promise.resolve() : this.verifier.sync()),
          // The broker is started once every local service has registered, and each registration
          // sends this node's INFO at once (broker.config.ts: serviceChangedDebounceTime 0), so
          // chat nodes know `gateway.deliver` here before any socket's ws.online reaches them.
          announced: () => this.broker.started,
        });
      },
      started: async () => {
        // What the routes served beside moleculer-web (files, the export) take from the gateway.
        const streamed = {
          broker: this.broker,
          authenticate: (token: string) => this.verifier.verify(token),
          assertReady: () => this.assertReady(),
          answerError: (req: Req, res: ServerResponse, err: unknown) => this.answerError(req, res, err),
          cors: config.corsOrigins.length
            ? (req: Req, res: ServerResponse) => {
                (
                  this as unknown as { corsHandler(s: unknown, q: Req, r: ServerResponse): boolean }
                ).corsHandler(this.settings, req, res);
              }
            : undefined,
          logger: this.logger,
          metrics: platformMetrics(this.broker),
        };
        this.files = new FileRoutes({
          ...streamed,
          blobs: await openBlobStore(config.files),
          limits: { maxBytes: config.files.maxBytes, allowedTypes: config.files.allowedTypes },
        });
        this.exporter = new AccountExport(streamed);
        this.syncTimer = setInterval(() => void this.syncKeys(), SYNC_INTERVAL_MS);
        this.syncTimer.unref();
        this.ws = this.createWsServer();
        this.ws.attach((this as unknown as { server: Server }).server);
      },
      stopped: async () => {
        clearInterval(this.syncTimer);
        await this.drain();
        await this.files?.close();
      },
    });
  }

  /** The request's id (the client's X-Request-Id when well formed), set on the answer. */
  private beginRequest(req: Req, res: ServerResponse): string {
    const given = req.headers["x-request-id"];
    const id = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader("X-Request-Id", id);
    // A stopping gateway still answers what reaches it, then closes the connection so the
    // client's next request goes to a gateway that stays.
    if (this.draining) res.setHeader("Connection", "close");
    return id;
  }

  /** Counts the request until its answer is sent or its connection goes. */
  private trackRequest(res: ServerResponse): void {
    this.httpInFlight += 1;
    res.once("close", () => {
      this.httpInFlight -= 1;
      if (this.httpInFlight === 0) for (const wake of this.httpIdle.splice(0)) wake();
    });
  }

  /** Resolves when no HTTP request is being answered, or after timeoutMs. */
  private requestsDone(timeoutMs: number): Promise<void> {
    if (this.httpInFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.httpIdle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The port the HTTP server listens on (useful when PORT=0). */
  get port(): number {
    return ((this as unknown as { server: { address(): AddressInfo } }).server.address() as AddressInfo).port;
  }

  /**
   * Graceful stop: new connections are refused and idle keep-alive ones closed, readiness turns
   * 503, answers close their connection, requests being answered are finished, and the sockets
   * finish the frames they received, then close with 1001 so clients reconnect to another gateway.
   */
  private drain(): Promise<void> {
    this.draining ??= (async () => {
      const server = (this as unknown as { server?: Server }).server;
      if (server?.listening) {
        // moleculer-web's own stopped() closes the listener only if it still listens.
        server.close();
        server.closeIdleConnections();
      }
      // The requests this gateway took are answered before its broker stops its services and
      // leaves the bus: a call to another node made after that would fail with 503. A request
      // gets at most the request timeout, as it would have anyway.
      await Promise.all([
        this.ws?.shutdown(),
        this.requestsDone(platformConfig(this.broker).requestTimeoutMs),
      ]);
    })();
    return this.draining;
  }

  private createWsServer(): WsServer {
    const config = platformConfig(this.broker);
    const allowed = new Set([...config.corsOrigins, ...config.ws.origins]);
    const nodeId = this.broker.nodeID;
    return new WsServer({
      verifier: this.verifier,
      limits: config.ws,
      isReady: async () => this.readiness.isKnownReady() || (await this.readiness.state()).ready,
      logger: this.logger,
      isOriginAllowed: (origin, host) => {
        if (origin === undefined) return true;
        if (allowed.has(origin)) return true;
        try {
          return new URL(origin).host === host;
        } catch {
          return false;
        }
      },
      chat: {
        call: (action, params, meta) => this.broker.call(action, params, { meta }),
        userOnline: (userId) => {
          this.presenceStamp.version += 1;
          void broadcast(this.broker, "ws.online", { nodeId, userId, ...this.presenceStamp });
        },
        userOffline: (userId) => {
          this.presenceStamp.version += 1;
          const at = new Date().toISOString();
          void broadcast(this.broker, "ws.offline", { nodeId, userId, at, ...this.presenceStamp });
        },
      },
    });
  }

  private answerNotFound(req: Req, res: ServerResponse): void {
    this.answerError(req, res, new NotFoundError("Resource"));
  }

  /**
   * Refetches the signing keys and revocations, when an auth node is there to ask: auth announces
   * its first key while it is still starting, before its actions are registered, and a call then
   * only logs "Service 'auth.jwks' is not registered" twice on every clean start. Until auth is
   * discovered, readiness fetches the keys itself (`ensureKeys`).
   */
  private async syncKeys(): Promise<void> {
    const endpoints = this.broker.registry.getActionEndpoints("auth.jwks") as unknown as
      | { hasAvailable(): boolean }
      | undefined;
    if (!endpoints?.hasAvailable()) return;
    await this.verifier.sync().catch(() => undefined);
  }

  /**
   * moleculer-web picks an action's node before the request's params are known to the strategy
   * (it hands the gateway's own context, whose params are the req and res), so an action sharded
   * by a param (chat.send and chat.react, by chat id) would go to any node. Picked again here, from
   * the request's params, it goes where the same call over WebSocket goes.
   */
  private reshard(ctx: Ctx, req: Req): void {
    const action = req.$alias?.action;
    if (!action) return;
    const endpoints = this.broker.registry.getActionEndpoints(action) as
      | { strategy: unknown; next(ctx: unknown): ActionEndpoint | null }
      | undefined;
    if (!(endpoints?.strategy instanceof Strategies.Shard)) return;
    const endpoint = endpoints.next({ params: req.$params ?? {}, meta: ctx.meta });
    if (endpoint) {
      req.$endpoint = endpoint;
      req.$action = endpoint.action;
    }
  }

  private async assertReady(): Promise<void> {
    if (this.readiness.isKnownReady()) return;
    const state = await this.readiness.state();
    if (!state.ready) throw new ServiceUnavailableError("Not ready yet", "NOT_READY");
  }

  private async sendReadiness(res: ServerResponse): Promise<void> {
    if (this.draining) {
      res.setHeader("Retry-After", "1");
      sendJson(res, 503, { status: "not_ready", checks: { gateway: "stopping" } });
      return;
    }
    const state = await this.readiness.state();
    if (!state.ready) res.setHeader("Retry-After", "1");
    sendJson(res, state.ready ? 200 : 503, {
      status: state.ready ? "ready" : "not_ready",
      checks: state.checks,
    });
  }

  private async authenticateRequest(req: Req) {
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header) : null;
    if (!match?.[1]) throw new UnauthorizedError();
    return this.verifier.verify(match[1]);
  }

  private answerError(req: Req, res: ServerResponse, err: unknown): void {
    const mapped = toHttpError(err);
    const entry = {
      requestId: res.getHeader("X-Request-Id"),
      method: req.method,
      url: redactedUrl(req.url),
      status: mapped.status,
    };
    if (mapped.status === 500) this.logger.error({ ...entry, err }, "failed");
    // Load shed by an auth node is counted there (social_hash_shed_total); a line per refusal
    // would add to the overload it answers.
    else if ((err as { type?: unknown })?.type === "HASHING_BUSY")
      this.logger.debug({ ...entry, reason: "hashing busy" }, "shed");
    else if (mapped.status >= 500)
      this.logger.warn({ ...entry, reason: (err as Error)?.message }, "unavailable");
    else this.logger.info(entry, "request");
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [name, value] of Object.entries(mapped.headers)) res.setHeader(name, value);
    sendJson(res, mapped.status, mapped.body);
  }
}

/** The URL as logged: an access token given in the query (file downloads) is never written out. */
export function redactedUrl(url: string | undefined): string | undefined {
  return url?.replace(/([?&]access_token=)[^&]*/gi, "$1REDACTED");
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.end(JSON.stringify(body));
}
