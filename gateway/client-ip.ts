/**
 * The client address used for rate limits and sessions: the socket's peer, unless that peer is a
 * proxy listed in TRUSTED_PROXIES, in which case X-Forwarded-For is followed back through trusted
 * hops only. A forged X-Forwarded-For from an untrusted peer is ignored.
 */
import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";

export function clientIpResolver(trustedProxies: string[]): (req: IncomingMessage) => string {
  const trust = proxyaddr.compile(trustedProxies);
  return (req) => proxyaddr(req, trust);
}
