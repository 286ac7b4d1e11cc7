/**
 * The gateway's file routes, `POST /uploads` and `GET|HEAD /files/:id`, served beside
 * moleculer-web rather than through it: their bodies stream for as long as they take (an action
 * call would end them at REQUEST_TIMEOUT_MS) and never pass the JSON body parser. They take the
 * access token as a Bearer header, and downloads also as `?access_token=` (an <img> or <video>
 * cannot send a header; the gateway never logs it). The chat service keeps the records and
 * decides who reads what; the bytes go straight between the client and the blob store.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceBroker } from "moleculer";
import { type AuthUser, type CallMeta, call } from "../../lib/contracts.ts";
import { NotFoundError, UnauthorizedError } from "../../lib/errors.ts";
import type { BlobStore } from "../../lib/files/blob-store.ts";
import type { PlatformMetrics } from "../../lib/metrics.ts";
import { timeHttpRequest } from "../../lib/observability.ts";
import { FileSender } from "./file-sender.ts";
import { type UploadLimits, UploadReceiver } from "./upload-receiver.ts";

const FILE_PATH = /^\/files\/([A-Za-z0-9_-]{1,64})\/?$/;
const UPLOADS_PATH = /^\/uploads\/?$/;

export interface FileRoutesDeps {
  blobs: BlobStore;
  limits: UploadLimits;
  broker: ServiceBroker;
  authenticate(token: string): Promise<AuthUser>;
  assertReady(): Promise<void>;
  answerError(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  /** Writes the CORS headers of an actual request, when CORS is on. */
  cors: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  logger: { info(entry: Record<string, unknown>, message: string): void };
  metrics: PlatformMetrics | undefined;
}

/** Route templates the HTTP metrics label these requests with. */
const UPLOAD_ROUTE = { method: "POST", fullPath: "/uploads" };
const FILE_GET = { method: "GET", fullPath: "/files/:id" };
const FILE_ROUTES: Record<string, { method: string; fullPath: string }> = {
  GET: FILE_GET,
  HEAD: { method: "HEAD", fullPath: "/files/:id" },
};

export class FileRoutes {
  /** Their paths and methods, for the gateway's method table (405 and OPTIONS). */
  static readonly ROUTES = [
    { method: "POST", path: "/uploads" },
    { method: "GET", path: "/files/:id" },
    { method: "HEAD", path: "/files/:id" },
  ];

  private readonly d: FileRoutesDeps;
  private readonly receiver: UploadReceiver;
  private readonly sender: FileSender;

  constructor(deps: FileRoutesDeps) {
    this.d = deps;
    this.receiver = new UploadReceiver(deps.blobs, deps.limits);
    this.sender = new FileSender(deps.blobs);
  }

  handles(req: IncomingMessage): boolean {
    const path = pathOf(req);
    // Any /files/... path: one that is not a file id answers FILE_NOT_FOUND here.
    return UPLOADS_PATH.test(path) || path.startsWith("/files/");
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    const upload = UPLOADS_PATH.test(url.pathname);
    const metrics = this.d.metrics;
    timeHttpRequest(metrics, req, res, upload ? UPLOAD_ROUTE : (FILE_ROUTES[req.method ?? ""] ?? FILE_GET));
    if (metrics && !upload) {
      res.once("finish", () => {
        if (res.statusCode === 200 || res.statusCode === 206)
          metrics.fileTransferred("download", Number(res.getHeader("content-length") ?? 0));
      });
    }
    try {
      this.d.cors?.(req, res);
      await this.d.assertReady();
      const user = await this.user(req, upload ? null : url.searchParams.get("access_token"));
      const meta: CallMeta = { user };
      if (upload) {
        const view = await this.receiver.receive(req, url.searchParams.get("name") ?? undefined, {
          begin: (params) => call(this.d.broker, "chat.uploadBegin", params, { meta }),
          commit: (params) => call(this.d.broker, "chat.uploadCommit", params, { meta }),
          abort: async (id) => {
            await call(this.d.broker, "chat.uploadAbort", { id }, { meta });
          },
        });
        metrics?.fileTransferred("upload", view.size);
        res.statusCode = 201;
        res.setHeader("Location", `/files/${view.id}`);
        res.setHeader("Content-Type", "application/json; charset=utf-8");
        res.end(JSON.stringify(view));
        this.d.logger.info({ method: req.method, url: "/uploads", status: 201, size: view.size }, "request");
        return;
      }
      const id = FILE_PATH.exec(url.pathname)?.[1];
      if (!id) throw new NotFoundError("File", "FILE_NOT_FOUND");
      const thumb = FileSender.thumbOf(url.searchParams.get("thumb") ?? undefined);
      const file = await call(this.d.broker, "chat.fileAccess", { id }, { meta });
      await this.sender.send(req, res, file, thumb);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  close(): Promise<void> {
    return this.d.blobs.close();
  }

  /**
   * Answers an error. A request whose body was not read to its end (refused before or while it
   * streamed) gets its answer with `Connection: close`, and its socket is closed once the answer
   * is out, so the gateway reads no more of it.
   */
  fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const unread = req.method !== "GET" && req.method !== "HEAD" && !req.readableEnded;
    if (unread && !res.headersSent) res.setHeader("Connection", "close");
    this.d.answerError(req, res, err);
    if (unread) {
      req.pause();
      res.once("finish", () => setTimeout(() => req.socket.destroy(), 100).unref());
    }
  }

  private async user(req: IncomingMessage, queryToken: string | null): Promise<AuthUser> {
    const header = req.headers.authorization;
    const bearer = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header)?.[1] : undefined;
    const token = bearer ?? queryToken ?? undefined;
    if (!token) throw new UnauthorizedError();
    return this.d.authenticate(token);
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
