/**
 * The reference web client (web/, built into web/dist by `npm run build:web`, which `npm install`
 * and `npm start` run) served by the gateway through moleculer-web's own static serving
 * (serve-static). moleculer-web serves a file only for a request no route matched, so the page never
 * shadows an API route, and an unknown path still gets the API's JSON 404. Without a build (a
 * production image has no web/) nothing is served.
 */
import { existsSync } from "node:fs";
import type { ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WEB_CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../web/dist");

/** The page talks only to its own origin (REST and the WebSocket) and loads nothing from elsewhere but https avatars. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' https: data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

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
      setHeaders: (res: ServerResponse) => {
        res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
        res.setHeader("X-Content-Type-Options", "nosniff");
        res.setHeader("Referrer-Policy", "no-referrer");
      },
    },
  };
}
