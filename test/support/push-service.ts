/**
 * A push service stand-in (RFC 8030) on 127.0.0.1 for tests: it hands out subscriptions that point
 * at itself, keeping each one's private key and auth secret as a browser does, and for every push
 * it checks what a real push service checks (the VAPID JWT of RFC 8292, signed by the key it names,
 * for this origin, not expired and at most 24 h ahead, with a `sub`) and then, as the browser
 * would, decrypts the aes128gcm body (RFC 8291). What arrived is kept per endpoint. It can be told
 * to answer an endpoint with a given status the next N times (404, 410, 429 with Retry-After, 500).
 */
import { createECDH, randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";

interface Ece {
  decrypt(buffer: Buffer, params: { version: string; privateKey: unknown; authSecret: string }): Buffer;
}
const ece = createRequire(import.meta.url)("http_ece") as Ece;

export interface ReceivedPush {
  endpoint: string;
  headers: http.IncomingHttpHeaders;
  payload: Record<string, unknown>;
}

/** A push the stand-in refused, and why (a failed check answers 400 or 401). */
export interface RefusedPush {
  endpoint: string;
  status: number;
  reason: string;
}

interface Subscriber {
  ecdh: ReturnType<typeof createECDH>;
  auth: string;
  answers: { status: number; times: number; retryAfter?: string }[];
}

const MAX_JWT_LIFETIME_S = 24 * 3600;

export interface PushServiceStandIn {
  readonly origin: string;
  createSubscription(): { endpoint: string; keys: { p256dh: string; auth: string } };
  /** The next `times` pushes to the endpoint are answered `status` (a 429 with Retry-After). */
  answer(endpoint: string, status: number, times?: number, retryAfter?: string): void;
  received(endpoint: string): ReceivedPush[];
  /** Pushes answered with a status of an `answer` call, per endpoint. */
  refusedOnPurpose(endpoint: string): number;
  /** Pushes that failed a check (these must never happen). */
  readonly refused: RefusedPush[];
  total(): number;
  /** Resolves once `n` pushes in all have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedPush[]>;
  /** Resolves once `n` pushes have arrived at the endpoint. */
  waitForEndpoint(endpoint: string, n: number, timeoutMs?: number): Promise<ReceivedPush[]>;
  close(): Promise<void>;
}

export async function startPushService(): Promise<PushServiceStandIn> {
  const subscribers = new Map<string, Subscriber>();
  const byEndpoint = new Map<string, ReceivedPush[]>();
  const purposely = new Map<string, number>();
  const all: ReceivedPush[] = [];
  const refused: RefusedPush[] = [];
  let waiters: { test(): boolean; resolve(): void }[] = [];
  let origin = "";

  const check = async (req: http.IncomingMessage, body: Buffer, sub: Subscriber) => {
    const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? "");
    if (!auth) throw refusal(401, "Authorization is not `vapid t=…, k=…`");
    const [, token, k] = auth as unknown as [string, string, string];
    const point = Buffer.from(k, "base64url");
    if (point.length !== 65 || point[0] !== 4) throw refusal(401, "k is not an uncompressed P-256 point");
    if (decodeProtectedHeader(token).alg !== "ES256") throw refusal(401, "the JWT is not ES256");
    const key = await importJWK(
      {
        kty: "EC",
        crv: "P-256",
        x: point.subarray(1, 33).toString("base64url"),
        y: point.subarray(33).toString("base64url"),
      },
      "ES256",
    );
    const { payload } = await jwtVerify(token, key, { audience: origin }).catch((err: Error) => {
      throw refusal(401, `JWT: ${err.message}`);
    });
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== "number" || payload.exp <= now) throw refusal(401, "exp is not in the future");
    if (payload.exp > now + MAX_JWT_LIFETIME_S) throw refusal(401, "exp is more than 24 h ahead");
    if (typeof payload.sub !== "string" || payload.sub === "") throw refusal(401, "no sub claim");
    if (req.headers["content-encoding"] !== "aes128gcm")
      throw refusal(400, "Content-Encoding is not aes128gcm");
    if (!/^\d+$/.test(String(req.headers.ttl ?? ""))) throw refusal(400, "TTL is missing");
    const topic = req.headers.topic;
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(String(topic))) throw refusal(400, "bad Topic");
    let plain: Buffer;
    try {
      plain = ece.decrypt(body, { version: "aes128gcm", privateKey: sub.ecdh, authSecret: sub.auth });
    } catch (err) {
      throw refusal(400, `decryption: ${(err as Error).message}`);
    }
    return JSON.parse(plain.toString("utf8")) as Record<string, unknown>;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const endpoint = `${origin}${req.url ?? ""}`;
      const sub = subscribers.get(endpoint);
      if (req.method !== "POST" || !sub) {
        res.writeHead(404).end();
        return;
      }
      const planned = sub.answers[0];
      if (planned) {
        planned.times -= 1;
        if (planned.times <= 0) sub.answers.shift();
        purposely.set(endpoint, (purposely.get(endpoint) ?? 0) + 1);
        res.writeHead(planned.status, planned.retryAfter ? { "retry-after": planned.retryAfter } : {}).end();
        return;
      }
      check(req, Buffer.concat(chunks), sub).then(
        (payload) => {
          const push = { endpoint, headers: req.headers, payload };
          all.push(push);
          byEndpoint.set(endpoint, [...(byEndpoint.get(endpoint) ?? []), push]);
          res.writeHead(201, { location: `${origin}/message/${randomUUID()}` }).end();
          waiters = waiters.filter((w) => {
            if (!w.test()) return true;
            w.resolve();
            return false;
          });
        },
        (err: Error & { status?: number }) => {
          refused.push({ endpoint, status: err.status ?? 400, reason: err.message });
          res.writeHead(err.status ?? 400).end(err.message);
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const waitUntil = (test: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      if (test()) return resolve();
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${what} not there after ${timeoutMs} ms; refused: ${JSON.stringify(refused)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      waiters.push({ test, resolve: done });
    });

  return {
    origin,
    refused,
    createSubscription() {
      const ecdh = createECDH("prime256v1");
      const p256dh = ecdh.generateKeys().toString("base64url");
      const auth = randomBytes(16).toString("base64url");
      const endpoint = `${origin}/push/${randomUUID()}`;
      subscribers.set(endpoint, { ecdh, auth, answers: [] });
      return { endpoint, keys: { p256dh, auth } };
    },
    answer(endpoint, status, times = 1, retryAfter) {
      const sub = subscribers.get(endpoint);
      if (!sub) throw new Error(`No subscription ${endpoint}`);
      sub.answers.push({ status, times, ...(retryAfter !== undefined ? { retryAfter } : {}) });
    },
    received: (endpoint) => [...(byEndpoint.get(endpoint) ?? [])],
    refusedOnPurpose: (endpoint) => purposely.get(endpoint) ?? 0,
    total: () => all.length,
    async waitFor(n, timeoutMs = 10_000) {
      await waitUntil(() => all.length >= n, `${n} pushes`, timeoutMs);
      return [...all];
    },
    async waitForEndpoint(endpoint, n, timeoutMs = 10_000) {
      const count = () => byEndpoint.get(endpoint)?.length ?? 0;
      await waitUntil(() => count() >= n, `${n} pushes to ${endpoint}`, timeoutMs);
      return [...(byEndpoint.get(endpoint) ?? [])];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function refusal(status: number, reason: string): Error & { status: number } {
  return Object.assign(new Error(reason), { status });
}
