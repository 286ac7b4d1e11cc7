/**
 * Which methods each known path takes, from the route table: the gateway answers a known path
 * with a method it does not take 405 with `Allow` (RFC 9110, 15.5.6), and `OPTIONS` with 204 and
 * `Allow` (or the CORS preflight answer), without ever running an action for either. GET paths
 * take HEAD too (the same action, no body). Paths no route has are left to moleculer-web (the
 * web client's files, then the JSON 404).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { MethodNotAllowedError } from "./http-errors.ts";

interface PathMethods {
  re: RegExp;
  methods: Set<string>;
}

export class MethodTable {
  private readonly paths: PathMethods[] = [];

  constructor(routes: readonly { method: string; path: string }[]) {
    const byPath = new Map<string, Set<string>>();
    for (const { method, path } of routes) {
      const methods = byPath.get(path) ?? new Set<string>();
      methods.add(method);
      if (method === "GET") methods.add("HEAD");
      byPath.set(path, methods);
    }
    for (const [path, methods] of byPath) {
      methods.add("OPTIONS");
      this.paths.push({ re: templateRegExp(path), methods });
    }
  }

  /**
   * A known path's answer to a method it does not take (throws 405 with Allow) or to OPTIONS
   * (the CORS answer when `cors` gives one, else 204 with Allow): true when answered here.
   * moleculer-web alone routes a preflight to the action of its Access-Control-Request-Method
   * when CORS is off, and a plain OPTIONS to the path's GET action.
   */
  answer(
    req: IncomingMessage,
    res: ServerResponse,
    cors?: (req: IncomingMessage, res: ServerResponse) => boolean,
  ): boolean {
    const allow = this.allowed((req.url ?? "/").split("?")[0] ?? "/");
    if (!allow) return false;
    if (req.method === "OPTIONS") {
      if (cors?.(req, res)) return true;
      res.statusCode = 204;
      res.setHeader("Allow", allow.join(", "));
      res.end();
      return true;
    }
    if (!allow.includes(req.method ?? "")) throw new MethodNotAllowedError(req.method ?? "", allow);
    return false;
  }

  /** The methods a path takes, in a fixed order, or undefined when no route has the path. */
  allowed(path: string): string[] | undefined {
    const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
    const methods = new Set<string>();
    for (const p of this.paths) if (p.re.test(trimmed)) for (const m of p.methods) methods.add(m);
    if (methods.size === 0) return undefined;
    return ORDER.filter((m) => methods.has(m));
  }
}

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** `/chats/:id/messages` as a RegExp over the raw (still percent-encoded) path. */
function templateRegExp(template: string): RegExp {
  const source = template
    .split("/")
    .map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}$`);
}
