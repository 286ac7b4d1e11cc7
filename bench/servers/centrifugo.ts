/**
 * Centrifugo v6 as a target of the WebSocket benchmark: the binary that
 * scripts/install-test-servers.sh installs (CENTRIFUGO_BIN overrides it), started as a child of the
 * runner with a JSON config written to the deployment's temp dir: HTTP on 127.0.0.1 and a free
 * port, usage statistics off (no phoning home), the HTTP API off, the health endpoint on (the
 * readiness probe), connection JWTs verified with an HS256 secret made per deployment, and one
 * channel namespace, `chat`, whose channels any authenticated client may subscribe to and whose
 * subscribers may publish (no history, no recovery, no presence). Memory engine, one node. The
 * bench mints a connection token per user (`sub` = the user id) and talks Centrifugo's JSON
 * protocol (bench/ws/centrifugo-client.ts).
 */
import { createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { type BenchChild, spawnServer } from "../processes.ts";

/** The namespace of the benchmark's group channels: `chat:<chat id>`. */
export const CENTRIFUGO_NAMESPACE = "chat";

export function centrifugoBin(): string {
  const fromEnv = process.env.CENTRIFUGO_BIN;
  if (fromEnv) return fromEnv;
  for (const candidate of ["/root/go/bin/centrifugo", "/usr/local/bin/centrifugo"])
    if (existsSync(candidate)) return candidate;
  throw new Error("no centrifugo binary: run scripts/install-test-servers.sh or set CENTRIFUGO_BIN");
}

/** A port nothing listens on now (the OS picks it; Centrifugo takes no port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export function centrifugoConfig(port: number, hmacSecret: string) {
  return {
    http_server: { address: "127.0.0.1", port },
    log: { level: "warn" },
    usage_stats: { disabled: true },
    http_api: { disabled: true },
    health: { enabled: true },
    client: { token: { hmac_secret_key: hmacSecret } },
    channel: {
      namespaces: [
        {
          name: CENTRIFUGO_NAMESPACE,
          allow_subscribe_for_client: true,
          allow_publish_for_subscriber: true,
        },
      ],
    },
  };
}

/** An HS256 connection JWT for `userId` (Centrifugo takes `sub` as the user; no expiry). */
export function connectionToken(hmacSecret: string, userId: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: userId })}`;
  return `${unsigned}.${createHmac("sha256", hmacSecret).update(unsigned).digest("base64url")}`;
}

export interface CentrifugoServer {
  child: BenchChild;
  /** ws://127.0.0.1:<port>/connection/websocket */
  url: string;
  hmacSecret: string;
}

export async function startCentrifugo(dir: string, timeoutMs: number): Promise<CentrifugoServer> {
  const hmacSecret = randomBytes(32).toString("base64url");
  const port = await freePort();
  const configFile = path.join(dir, "centrifugo.json");
  await writeFile(configFile, JSON.stringify(centrifugoConfig(port, hmacSecret), null, 2));
  const base = `http://127.0.0.1:${port}`;
  const child = await spawnServer(
    "ws-centrifugo",
    centrifugoBin(),
    ["--config", configFile],
    async () => (await fetch(`${base}/health`, { signal: AbortSignal.timeout(1_000) })).ok,
    timeoutMs,
  );
  return { child, url: `ws://127.0.0.1:${port}/connection/websocket`, hmacSecret };
}
