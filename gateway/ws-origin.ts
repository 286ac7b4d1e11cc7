/**
 * The gateway's own origin as the browser sees it, for the WebSocket `Origin` check: scheme, host
 * and port, compared whole (RFC 6454), so a page on `http://` (or another port) of the same host
 * cannot open a socket on the `https://` gateway. The scheme is the connection's own, or the one a
 * proxy in TRUSTED_PROXIES names in `X-Forwarded-Proto`; that header from anyone else is ignored,
 * as X-Forwarded-For is (client-ip.ts).
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { clientIpResolver } from "./client-ip.ts";

/**
 * A forwarded address no TCP peer can have. client-ip.ts is where TRUSTED_PROXIES is evaluated:
 * asked for the client of a request from this peer that says it forwards for STAND_IN, it answers
 * STAND_IN exactly when it believes the peer, that is when the peer is a trusted proxy.
 */
const STAND_IN = "0.0.0.0";
const SCHEMES: Record<string, string> = { https: "https", wss: "https", http: "http", ws: "http" };

export function publicOriginResolver(trustedProxies: string[]): (req: IncomingMessage) => string | undefined {
  const clientIp = clientIpResolver(trustedProxies);
  const peerIsTrusted = (req: IncomingMessage) =>
    clientIp({
      socket: req.socket,
      headers: { "x-forwarded-for": STAND_IN },
    } as unknown as IncomingMessage) === STAND_IN;
  return (req) => {
    const host = req.headers.host;
    if (!host) return undefined;
    let scheme = (req.socket as Partial<TLSSocket>).encrypted ? "https" : "http";
    const forwarded = req.headers["x-forwarded-proto"];
    if (typeof forwarded === "string" && trustedProxies.length > 0 && peerIsTrusted(req)) {
      // The first value is the scheme the client used with the first proxy.
      scheme = SCHEMES[forwarded.split(",")[0]?.trim().toLowerCase() ?? ""] ?? scheme;
    }
    return originOf(`${scheme}://${host}`);
  };
}

/** The serialised origin of a URL (default ports dropped, host lower-cased), or undefined. */
export function originOf(url: string): string | undefined {
  try {
    const origin = new URL(url).origin;
    return origin === "null" ? undefined : origin;
  } catch {
    return undefined;
  }
}
