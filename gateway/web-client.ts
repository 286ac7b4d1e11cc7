/**
 * The reference web client (web/, built into web/dist by `npm run build:web`, which `npm install`
 * and `npm start` run) served by the gateway through moleculer-web's own static serving
 * (serve-static). moleculer-web serves a file only for a request no route matched, so the page never
 * shadows an API route, and an unknown path still gets the API's JSON 404. Without a build (a
 * production image has no web/) nothing is served. The icon, web/favicon.ico, is served from the
 * source folder by the gateway's own `/favicon.ico` route (the build copies only the page). The
 * service worker, `/sw.js`, is served with `Cache-Control: no-cache`, so a browser checks for a
 * new one each time it looks (a cached worker would outlive a release).
 */
import { existsSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WEB_CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../web/dist");
export const FAVICON_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../web/favicon.ico");

/** The page talks only to its own origin (REST and the WebSocket) and loads nothing from elsewhere but https avatars. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' https: data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The service worker's file in the build, served at the root so its scope is the whole page. */
const SERVICE_WORKER = "sw.js";

export interface WebClientAssets {
  folder: string;
  options: Record<string, unknown>;
}

/** moleculer-web's `assets` setting for the built web client, or undefined when it is not built. */
export function webClientAssets(folder = WEB_CLIENT_DIR): WebClientAssets | undefined {
  if (!existsSync(path.join(folder, "index.html"))) return undefined;
  return {
    folder,
    options: {
      index: "index.html",
      dotfiles: "ignore",
      fallthrough: true,
      // Called before serve-static sets its own Cache-Control and Content-Type, which keep these.
      setHeaders: (res: ServerResponse, file: string) => {
        res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
        res.setHeader("X-Content-Type-Options", "nosniff");
        res.setHeader("Referrer-Policy", "no-referrer");
        if (path.basename(file) === SERVICE_WORKER) {
          res.setHeader("Content-Type", "text/javascript; charset=utf-8");
          res.setHeader("Cache-Control", "no-cache");
        }
      },
    },
  };
}

/**
 * The handler of `GET /favicon.ico`: the icon, read once, cached by browsers for a day; without
 * the file (an image without web/), `notFound` answers.
 */
export function faviconHandler(
  file = FAVICON_FILE,
): (req: IncomingMessage, res: ServerResponse, notFound: () => void) => void {
  const icon = existsSync(file) ? readFileSync(file) : undefined;
  return (_req, res, notFound) => {
    if (!icon) return notFound();
    res.statusCode = 200;
    res.setHeader("Content-Type", "image/x-icon");
    res.setHeader("Content-Length", String(icon.length));
    res.setHeader("Cache-Control", "public, max-age=86400");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.end(icon);
  };
}
