/**
 * Builds the web client into web/dist: the page and its stylesheet copied, src/main.ts bundled
 * with the client library (client/) and the QR code encoder (uqr) for the browser by esbuild, and
 * src/sw.ts, the service worker that shows push notifications, bundled to sw.js. `npm install`
 * (prepare) and `npm start` (prestart) run it, so the gateway has something to serve; web/dist is
 * not committed.
 * esbuild is a devDependency: without it (a production install) this says so and builds nothing.
 */
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB = path.dirname(fileURLToPath(import.meta.url));
export const WEB_DIST = path.join(WEB, "dist");

/** Builds into outDir; answers false when esbuild is not installed. */
export async function buildWebClient(outDir = WEB_DIST): Promise<boolean> {
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    return false;
  }
  await mkdir(outDir, { recursive: true });
  await Promise.all([
    esbuild.build({
      entryPoints: [path.join(WEB, "src/main.ts")],
      outfile: path.join(outDir, "app.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: ["es2022"],
      minify: true,
      sourcemap: "linked",
      legalComments: "none",
      logLevel: "warning",
    }),
    // A classic script: every browser with Web Push runs it, module service workers not all.
    esbuild.build({
      entryPoints: [path.join(WEB, "src/sw.ts")],
      outfile: path.join(outDir, "sw.js"),
      bundle: true,
      format: "iife",
      platform: "browser",
      target: ["es2022"],
      minify: true,
      sourcemap: "linked",
      legalComments: "none",
      logLevel: "warning",
    }),
    copyFile(path.join(WEB, "index.html"), path.join(outDir, "index.html")),
    copyFile(path.join(WEB, "app.css"), path.join(outDir, "app.css")),
  ]);
  return true;
}

if (import.meta.main) {
  if (await buildWebClient()) console.log(`Web client built in ${path.relative(process.cwd(), WEB_DIST)}`);
  else console.log("esbuild is not installed (a devDependency): the web client was not built");
}
