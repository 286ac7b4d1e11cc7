/**
 * `GET /users/me/export`: everything the platform keeps of the caller, as one JSON document that
 * streams out as it is read (a user with years of messages never sits in the gateway's memory at
 * once): `{exportedAt, account, profile, sessions, chats, messages, uploads}`. Served beside
 * moleculer-web like the file routes, since it takes as long as the history is long and an action
 * call would end it at REQUEST_TIMEOUT_MS. The auth service counts it against
 * RATE_LIMIT_EXPORT_USER before a byte is sent.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceBroker } from "moleculer";
import { type AuthUser, type CallMeta, call, type UploadView } from "../lib/contracts.ts";
import { UnauthorizedError } from "../lib/errors.ts";
import type { PlatformMetrics } from "../lib/metrics.ts";
import { timeHttpRequest } from "../lib/observability.ts";

const EXPORT_PATH = /^\/users\/me\/export\/?$/;
const PAGE = 500;

export interface AccountExportDeps {
  broker: ServiceBroker;
  authenticate(token: string): Promise<AuthUser>;
  assertReady(): Promise<void>;
  answerError(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  cors: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  logger: {
    info(entry: Record<string, unknown>, message: string): void;
    warn(entry: Record<string, unknown>, message: string): void;
  };
  metrics: PlatformMetrics | undefined;
}

export class AccountExport {
  static readonly ROUTES = [
    { method: "GET", path: "/users/me/export" },
    { method: "HEAD", path: "/users/me/export" },
  ];

  private readonly d: AccountExportDeps;

  constructor(deps: AccountExportDeps) {
    this.d = deps;
  }

  handles(req: IncomingMessage): boolean {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    return EXPORT_PATH.test(q === -1 ? url : url.slice(0, q));
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    timeHttpRequest(this.d.metrics, req, res, { method: req.method ?? "GET", fullPath: "/users/me/export" });
    let started = false;
    try {
      this.d.cors?.(req, res);
      await this.d.assertReady();
      const header = req.headers.authorization;
      const token = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header)?.[1] : undefined;
      if (!token) throw new UnauthorizedError();
      const meta: CallMeta = { user: await this.d.authenticate(token) };
      const userId = meta.user?.id ?? "";
      if (req.method === "HEAD") {
        // What a GET would answer, without spending the hour's export.
        res.statusCode = 200;
        exportHeaders(res);
        res.end();
        return;
      }
      // The limit is spent here, before anything is written: a 429 is a whole answer.
      const { account, sessions } = await call(this.d.broker, "auth.exportAccount", {}, { meta });
      const profile = await call(this.d.broker, "profile.me", {}, { meta });
      const first = await call(this.d.broker, "chat.exportUser", { userId, limit: PAGE });
      res.statusCode = 200;
      exportHeaders(res);
      started = true;
      const head = {
        exportedAt: new Date().toISOString(),
        account,
        profile,
        sessions,
        chats: first.chats,
      };
      await write(res, `${JSON.stringify(head).slice(0, -1)},"messages":[`);
      const uploads: UploadView[] = [];
      let page = first;
      let count = 0;
      for (;;) {
        for (const message of page.messages) {
          await write(res, `${count > 0 ? "," : ""}${JSON.stringify(message)}`);
          count += 1;
        }
        uploads.push(...page.uploads);
        if (!page.next) break;
        page = await call(this.d.broker, "chat.exportUser", { userId, after: page.next, limit: PAGE });
      }
      await write(res, `],"uploads":${JSON.stringify(uploads)}}`);
      res.end();
      this.d.logger.info(
        { method: req.method, url: "/users/me/export", status: 200, messages: count },
        "request",
      );
    } catch (err) {
      if (!started) {
        this.d.answerError(req, res, err);
        return;
      }
      // Past the headers nothing can say it failed but a cut-off body: the JSON does not parse.
      this.d.logger.warn({ url: "/users/me/export", err: String(err) }, "export cut off");
      res.destroy();
    }
  }
}

function exportHeaders(res: ServerResponse): void {
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Disposition", 'attachment; filename="export.json"');
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("X-Content-Type-Options", "nosniff");
}

function write(res: ServerResponse, chunk: string): Promise<void> {
  if (res.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      res.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      res.off("drain", onDrain);
      reject(new Error("The client went away"));
    };
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}
