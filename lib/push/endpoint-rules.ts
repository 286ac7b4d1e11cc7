/**
 * What a push subscription must look like before it is stored: an `https://` endpoint on a public
 * host (a subscription naming an internal address would make every push a request into the
 * platform's own network), and the browser's keys of RFC 8291: a 65-byte uncompressed P-256 point
 * and a 16-byte authentication secret, base64url. `allowInsecure` (tests) lets `http://` and
 * loopback or private hosts through.
 */
import { createPublicKey } from "node:crypto";
import { BlockList, isIP } from "node:net";
import type { PushSubscriptionInput } from "../contracts.ts";
import { type FieldIssue, ValidationFailedError } from "../errors.ts";

/** A subscription as stored: the endpoint as the URL parser wrote it, the keys without padding. */
export interface CheckedSubscription {
  endpoint: string;
  p256dh: string;
  auth: string;
}

const P256_POINT_BYTES = 65;
const AUTH_SECRET_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Loopback, private, link-local and unspecified ranges; IPv4-mapped IPv6 addresses match too. */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
] as const) {
  INTERNAL.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
] as const) {
  INTERNAL.addSubnet(net, prefix, "ipv6");
}

/** Checks a subscription; throws ValidationFailedError naming each field that fails. */
export function checkSubscription(
  input: PushSubscriptionInput,
  options: { allowInsecure: boolean },
): CheckedSubscription {
  const issues: FieldIssue[] = [];
  const endpoint = checkEndpoint(input.endpoint, options.allowInsecure, issues);
  const p256dh = checkKey("keys.p256dh", input.keys.p256dh, P256_POINT_BYTES, issues);
  const auth = checkKey("keys.auth", input.keys.auth, AUTH_SECRET_BYTES, issues);
  if (p256dh !== undefined && !isP256Point(Buffer.from(p256dh, "base64url"))) {
    issues.push({
      field: "keys.p256dh",
      type: "pushKey",
      message: "'keys.p256dh' must be an uncompressed P-256 public key (65 bytes starting 0x04)",
    });
  }
  if (issues.length > 0 || endpoint === undefined || p256dh === undefined || auth === undefined) {
    throw new ValidationFailedError(issues, "The push subscription is not valid");
  }
  return { endpoint, p256dh, auth };
}

/** Whether the host (as the URL parser gives it: IPv6 in brackets) is one of the platform's own. */
export function isInternalHost(hostname: string): boolean {
  const host = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  const family = isIP(host);
  if (family === 4) return INTERNAL.check(host, "ipv4");
  if (family === 6) return INTERNAL.check(host, "ipv6");
  return false;
}

function checkEndpoint(raw: string, allowInsecure: boolean, issues: FieldIssue[]): string | undefined {
  const fail = (message: string): undefined => {
    issues.push({ field: "endpoint", type: "pushEndpoint", message });
    return undefined;
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail("'endpoint' must be an absolute URL");
  }
  const schemes = allowInsecure ? ["https:", "http:"] : ["https:"];
  if (!schemes.includes(url.protocol)) return fail("'endpoint' must be an https:// URL");
  if (url.username || url.password) return fail("'endpoint' must not carry a user name or password");
  if (!allowInsecure && isInternalHost(url.hostname)) {
    return fail("'endpoint' must name a public host, not a loopback, private or link-local one");
  }
  return url.href;
}

/** The key without padding when it is base64url of exactly `bytes` bytes. */
function checkKey(field: string, raw: string, bytes: number, issues: FieldIssue[]): string | undefined {
  const bare = raw.replace(/=+$/, "");
  const decoded = BASE64URL.test(raw) ? Buffer.from(bare, "base64url") : undefined;
  if (!decoded || decoded.toString("base64url") !== bare || decoded.length !== bytes) {
    issues.push({ field, type: "pushKey", message: `'${field}' must be base64url of ${bytes} bytes` });
    return undefined;
  }
  return bare;
}

function isP256Point(point: Buffer): boolean {
  if (point[0] !== 0x04) return false;
  try {
    createPublicKey({
      key: {
        kty: "EC",
        crv: "P-256",
        x: point.subarray(1, 33).toString("base64url"),
        y: point.subarray(33).toString("base64url"),
      },
      format: "jwk",
    });
    return true;
  } catch {
    return false;
  }
}
