/**
 * The WebSocket Origin check compares scheme, host and port with the gateway's public origin; the
 * scheme comes from X-Forwarded-Proto only when a proxy in TRUSTED_PROXIES sends it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;

/** The close code, or "open" when the socket got `ready` and stayed open a moment. */
async function outcome(
  url: string,
  token: string,
  headers: Record<string, string>,
): Promise<number | "open"> {
  const s = new RawSocket(url, { token, headers });
  const result = await Promise.race([
    s.closed.then((c) => c.code),
    s
      .next((f) => f.type === "ready")
      .then(() => new Promise<"open">((r) => setTimeout(() => r("open"), 100))),
  ]);
  s.close();
  return result;
}

async function tokenOf(platform: Platform): Promise<string> {
  const api = new ApiClient(platform.url);
  await api.register(newUser("o"));
  return api.accessToken as string;
}

describe("without a trusted proxy", () => {
  let platform: Platform;
  let token: string;
  let wsUrl: string;
  let host: string;
  before(async () => {
    platform = await startEmbedded({ WS_ORIGINS: "https://app.example.test" });
    token = await tokenOf(platform);
    wsUrl = `${platform.url.replace("http", "ws")}/ws`;
    host = new URL(platform.url).host;
  });
  after(() => platform.stop());

  test("the gateway's own origin, a listed one and none are allowed", async () => {
    assert.equal(await outcome(wsUrl, token, { origin: `http://${host}` }), "open");
    assert.equal(await outcome(wsUrl, token, { origin: `HTTP://${host.toUpperCase()}` }), "open");
    assert.equal(await outcome(wsUrl, token, { origin: "https://app.example.test" }), "open");
    assert.equal(await outcome(wsUrl, token, {}), "open");
  });

  test("the same host with another scheme or port is closed with 1008", async () => {
    const port = Number(new URL(platform.url).port);
    assert.equal(await outcome(wsUrl, token, { origin: `https://${host}` }), 1008);
    assert.equal(await outcome(wsUrl, token, { origin: `http://127.0.0.1:${port + 1}` }), 1008);
    assert.equal(await outcome(wsUrl, token, { origin: "null" }), 1008);
  });

  test("X-Forwarded-Proto from a peer that is not a trusted proxy is ignored", async () => {
    const headers = { "x-forwarded-proto": "https" };
    assert.equal(await outcome(wsUrl, token, { ...headers, origin: `https://${host}` }), 1008);
    assert.equal(await outcome(wsUrl, token, { ...headers, origin: `http://${host}` }), "open");
  });
});

describe("behind a trusted proxy that terminates TLS", () => {
  let platform: Platform;
  let token: string;
  let wsUrl: string;
  let host: string;
  before(async () => {
    platform = await startEmbedded({ TRUSTED_PROXIES: "127.0.0.1" });
    token = await tokenOf(platform);
    wsUrl = `${platform.url.replace("http", "ws")}/ws`;
    host = new URL(platform.url).host;
  });
  after(() => platform.stop());

  test("the proxy's X-Forwarded-Proto gives the scheme the Origin must have", async () => {
    for (const proto of ["https", "wss", "https, http"]) {
      const headers = { "x-forwarded-proto": proto };
      assert.equal(await outcome(wsUrl, token, { ...headers, origin: `https://${host}` }), "open", proto);
      assert.equal(await outcome(wsUrl, token, { ...headers, origin: `http://${host}` }), 1008, proto);
    }
    assert.equal(
      await outcome(wsUrl, token, { origin: `http://${host}` }),
      "open",
      "no header: the socket's scheme",
    );
  });
});
