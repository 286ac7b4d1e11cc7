/** ApiClient's retries against a real local HTTP server whose answers the test scripts. */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ApiClient, ApiError } from "../../../client/rest-client.ts";

let server: Server;
let url: string;
/** Status codes still to answer per "METHOD path", then 200. */
const script = new Map<string, number[]>();
const seen: string[] = [];
/** The Retry-After of the scripted 503s. */
let retryAfter = "0";

before(async () => {
  server = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    seen.push(key);
    const status = script.get(key)?.shift() ?? 200;
    res.statusCode = status;
    res.setHeader("content-type", "application/json");
    if (status === 503) res.setHeader("retry-after", retryAfter);
    res.end(JSON.stringify(status === 200 ? { ok: true } : { error: { code: "X", message: "no" } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const fast = { minDelayMs: 1, maxDelayMs: 5 };
const count = (key: string) => seen.filter((k) => k === key).length;

describe("ApiClient retries", () => {
  test("a read answered 503, 502 then 200 succeeds on the third try", async () => {
    script.set("GET /a", [503, 502]);
    const body = await new ApiClient(url, { retry: fast }).request("GET", "/a");
    assert.deepEqual(body, { ok: true });
    assert.equal(count("GET /a"), 3);
  });

  test("a read that keeps failing stops after the attempts allowed and throws the last status", async () => {
    script.set("GET /b", [503, 503, 503, 503, 503]);
    await assert.rejects(
      new ApiClient(url, { retry: { ...fast, attempts: 3 } }).request("GET", "/b"),
      (err) => {
        return err instanceof ApiError && err.status === 503;
      },
    );
    assert.equal(count("GET /b"), 3);
  });

  test("a write answered 503 is not resent: it may have been done", async () => {
    script.set("POST /c", [503]);
    await assert.rejects(new ApiClient(url, { retry: fast }).request("POST", "/c", {}), (err) => {
      return err instanceof ApiError && err.status === 503;
    });
    assert.equal(count("POST /c"), 1);
  });

  test("an idempotent PUT or DELETE answered 503 with Retry-After is resent", async () => {
    script.set("PUT /chats/c1/mute", [503]);
    script.set("DELETE /users/me/blocks/u1", [503, 503]);
    const api = new ApiClient(url, { retry: fast });
    await api.request("PUT", "/chats/c1/mute", { until: null });
    await api.unblock("u1");
    assert.equal(count("PUT /chats/c1/mute"), 2);
    assert.equal(count("DELETE /users/me/blocks/u1"), 3);
  });

  test("a 503 is not resent for a login, a registration or a DELETE whose repeat would differ", async () => {
    script.set("POST /auth/login", [503]);
    script.set("POST /auth/register", [503]);
    script.set("DELETE /auth/sessions/s1", [503]);
    const api = new ApiClient(url, { retry: fast });
    const is503 = (err: unknown) => err instanceof ApiError && err.status === 503;
    await assert.rejects(api.login({ username: "u", password: "p".repeat(12) }), is503);
    await assert.rejects(
      api.register({ email: "u@example.com", username: "u", password: "p".repeat(12) }),
      is503,
    );
    await assert.rejects(api.revokeSession("s1"), is503);
    assert.equal(count("POST /auth/login"), 1);
    assert.equal(count("POST /auth/register"), 1);
    assert.equal(count("DELETE /auth/sessions/s1"), 1);
  });

  test("the wait before a resend follows Retry-After", async () => {
    retryAfter = "1";
    try {
      script.set("GET /slow", [503]);
      const started = performance.now();
      await new ApiClient(url, { retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 5_000 } }).request(
        "GET",
        "/slow",
      );
      assert.ok(performance.now() - started >= 990, "waited the second Retry-After asked for");
    } finally {
      retryAfter = "0";
    }
  });

  test("client errors are never retried", async () => {
    script.set("GET /d", [404]);
    await assert.rejects(new ApiClient(url, { retry: fast }).request("GET", "/d"), (err) => {
      return err instanceof ApiError && err.status === 404;
    });
    assert.equal(count("GET /d"), 1);
  });

  test("a write whose connection was refused is resent, and reaches a server that comes up", async () => {
    const late = createServer((_req, res) => res.end("{}"));
    await new Promise<void>((resolve) => late.listen(0, "127.0.0.1", resolve));
    const port = (late.address() as AddressInfo).port;
    await new Promise<void>((resolve) => late.close(() => resolve()));
    const hits: string[] = [];
    const again = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.setHeader("content-type", "application/json");
      res.end("{}");
    });
    setTimeout(() => again.listen(port, "127.0.0.1"), 150);
    try {
      const client = new ApiClient(`http://127.0.0.1:${port}`, {
        retry: { attempts: 20, minDelayMs: 20, maxDelayMs: 50 },
      });
      assert.deepEqual(await client.request("POST", "/e", { x: 1 }), {});
      assert.deepEqual(hits, ["POST /e"], "sent once the server listened, exactly once");
    } finally {
      await new Promise<void>((resolve) => again.close(() => resolve()));
    }
  });

  test("retry: false makes one attempt", async () => {
    script.set("GET /f", [503]);
    await assert.rejects(new ApiClient(url, { retry: false }).request("GET", "/f"), ApiError);
    assert.equal(count("GET /f"), 1);
  });
});
