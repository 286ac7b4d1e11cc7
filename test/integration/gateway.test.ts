import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { base64url, SignJWT } from "jose";
import { ApiClient } from "../../client/rest-client.ts";
import { ROUTES } from "../../gateway/routes.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let api: ApiClient;
let token: string;

before(async () => {
  platform = await startEmbedded({ CORS_ORIGINS: "https://app.example.test", BODY_LIMIT_BYTES: "4096" });
  api = new ApiClient(platform.url);
  token = (await api.register(newUser())).accessToken;
});
after(() => platform.stop());

function codeOf(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}

function assertErrorShape(body: unknown): void {
  const error = (body as { error?: Record<string, unknown> }).error;
  assert.ok(error, `error body expected, got ${JSON.stringify(body)}`);
  assert.match(String(error.code), /^[A-Z][A-Z0-9_]*$/);
  assert.equal(typeof error.message, "string");
  assert.ok(!JSON.stringify(body).includes("    at "), "no stack trace");
}

describe("bad input", () => {
  test("malformed JSON is 400 MALFORMED_JSON", async () => {
    const res = await api.raw("POST", "/auth/register", { rawBody: '{"email": "a@b.test",' });
    assert.equal(res.status, 400);
    assert.equal(codeOf(res.body), "MALFORMED_JSON");
  });

  test("a body over the limit is 413", async () => {
    const res = await api.raw("POST", "/auth/login", {
      body: { email: "a@b.test", password: "x".repeat(10_000) },
    });
    assert.equal(res.status, 413);
    assertErrorShape(res.body);
  });

  test("missing, unknown and wrong-typed fields are 422 with per-field details", async () => {
    const user = newUser();
    const cases: [unknown, string][] = [
      [{ email: user.email, password: user.password }, "username"],
      [{ ...user, admin: true }, "admin"],
      [{ ...user, email: 42 }, "email"],
      [{ ...user, username: ["a"] }, "username"],
      [{ ...user, password: null }, "password"],
      [{ ...user, email: "not-an-email" }, "email"],
      [{ ...user, username: "ab" }, "username"],
      [{ ...user, username: "a".repeat(33) }, "username"],
      [{ ...user, username: "ünïcode" }, "username"],
      [{ ...user, password: "short" }, "password"],
      [{ ...user, displayName: "x".repeat(65) }, "displayName"],
    ];
    for (const [body, field] of cases) {
      const res = await api.raw("POST", "/auth/register", { body });
      assert.equal(res.status, 422, `${JSON.stringify(body).slice(0, 80)} -> ${res.status}`);
      const details = (res.body as { error: { details: { field: string }[] } }).error.details;
      assert.ok(
        details.some((d) => d.field === field),
        `${field} expected in ${JSON.stringify(details)}`,
      );
    }
  });

  test("a JSON array or scalar body is refused", async () => {
    for (const rawBody of ["[]", '"text"', "42", "null"]) {
      const res = await api.raw("POST", "/auth/login", { rawBody });
      assert.ok([400, 422].includes(res.status), `${rawBody} -> ${res.status}`);
      assertErrorShape(res.body);
    }
  });

  test("operator injection in a body or a query never reaches the store", async () => {
    const body = await api.raw("POST", "/auth/login", {
      body: { email: { $ne: "" }, password: { $ne: "" } },
    });
    assert.equal(body.status, 422);
    const query = await api.raw("GET", "/users?q[$ne]=x");
    assert.equal(query.status, 422);
    const nested = await api.raw("GET", "/users/by-username/x?username[$gt]=");
    assert.ok([404, 422].includes(nested.status), `${nested.status}`);
    const refresh = await api.raw("POST", "/auth/refresh", { body: { refreshToken: { $exists: true } } });
    assert.equal(refresh.status, 422);
  });

  test("very long and non-ASCII strings get 4xx, never 500", async () => {
    const long = "é".repeat(1_500);
    for (const body of [
      { email: `${long}@x.test`, password: "whatever-1" },
      { username: long, password: long },
      { email: "\u0000@x.test", password: "\uD800" },
    ]) {
      const res = await api.raw("POST", "/auth/login", { body });
      assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
      assertErrorShape(res.body);
    }
    const path = await api.raw("GET", `/users/${encodeURIComponent("ü".repeat(100))}`);
    assert.equal(path.status, 422);
  });
});

describe("tokens", () => {
  async function status(t: string): Promise<number> {
    return (await api.raw("GET", "/users/me", { token: t })).status;
  }

  test("a token with a changed payload or signature is 401", async () => {
    const [h, p, s] = token.split(".") as [string, string, string];
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
    payload.sub = "someone-else";
    const forged = `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`;
    assert.equal(await status(forged), 401);
    const badSig = `${h}.${p}.${s.slice(0, -4)}AAAA`;
    assert.equal(await status(badSig), 401);
    assert.equal(await status("not.a.jwt"), 401);
    assert.equal(await status("x".repeat(5000)), 401);
  });

  test("alg none and HS256 tokens are 401", async () => {
    const [h, p] = token.split(".") as [string, string, string];
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(h)));
    const none = `${base64url.encode(JSON.stringify({ ...header, alg: "none" }))}.${p}.`;
    assert.equal(await status(none), 401);
    const jwks = (await api.raw("GET", "/.well-known/jwks.json")).body as {
      keys: { x: string; kid: string }[];
    };
    const publicKeyBytes = base64url.decode(jwks.keys[0]?.x ?? "");
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
    const hs = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", kid: jwks.keys[0]?.kid, typ: "at+jwt" })
      .sign(publicKeyBytes);
    assert.equal(await status(hs), 401);
  });

  test("an expired token is 401 TOKEN_EXPIRED", async () => {
    const shortLived = await startEmbedded({ ACCESS_TOKEN_TTL_S: "1" });
    try {
      const client = new ApiClient(shortLived.url);
      await client.register(newUser());
      await new Promise((r) => setTimeout(r, 7_000));
      const res = await client.raw("GET", "/users/me");
      assert.equal(res.status, 401);
      assert.equal(codeOf(res.body), "TOKEN_EXPIRED");
    } finally {
      await shortLived.stop();
    }
  });
});

describe("the HTTP surface", () => {
  test("internal actions are not reachable over HTTP", async () => {
    for (const path of [
      "/$node/list",
      "/api/$node/services",
      "/~node/actions",
      "/auth/rotateKeys",
      "/profile/record",
    ]) {
      const res = await api.raw("GET", path);
      assert.equal(res.status, 404, `${path} -> ${res.status}`);
      assertErrorShape(res.body);
    }
    const post = await api.raw("POST", "/auth/rotate-keys", { body: {} });
    assert.equal(post.status, 404);
  });

  test("every response carries a request id; a valid incoming one is kept", async () => {
    const res = await api.raw("GET", "/users/me", { headers: { "x-request-id": "trace-abc-123" } });
    assert.equal(res.headers.get("x-request-id"), "trace-abc-123");
    const bad = await api.raw("GET", "/nope", { headers: { "x-request-id": "bad id with spaces" } });
    assert.match(bad.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });

  test("large responses are compressed when the client accepts it", async () => {
    const res = await fetch(`${platform.url}/openapi.json`, { headers: { "accept-encoding": "gzip" } });
    assert.equal(res.headers.get("content-encoding"), "gzip");
    const doc = (await res.json()) as { openapi: string };
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(gzipSync("x").length > 0);
  });

  test("CORS allows the configured origin only", async () => {
    const ok = await fetch(`${platform.url}/users/me`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.test", "access-control-request-method": "GET" },
    });
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example.test");
    const other = await fetch(`${platform.url}/users/me`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example.test", "access-control-request-method": "GET" },
    });
    assert.notEqual(other.headers.get("access-control-allow-origin"), "https://evil.example.test");
  });

  test("health: live and ready answer 200 once the platform is up", async () => {
    assert.equal((await api.raw("GET", "/health/live")).status, 200);
    const ready = await api.raw("GET", "/health/ready");
    assert.equal(ready.status, 200);
    assert.deepEqual((ready.body as { checks: Record<string, string> }).checks, {
      auth: "ok",
      profile: "ok",
      chat: "ok",
      keys: "ok",
      gateway: "ok",
    });
  });

  test("the OpenAPI document lists every route with its params", async () => {
    const doc = (await api.raw("GET", "/openapi.json")).body as {
      paths: Record<string, Record<string, { operationId: string; parameters: { name: string }[] }>>;
    };
    for (const route of ROUTES) {
      const path = route.path.replace(/:([A-Za-z]+)/g, "{$1}");
      const op = doc.paths[path]?.[route.method.toLowerCase()];
      assert.ok(op, `${route.method} ${path} missing`);
      assert.equal(op.operationId, route.action);
    }
    const search = doc.paths["/users"]?.get;
    assert.deepEqual(search?.parameters.map((p) => p.name).sort(), ["cursor", "limit", "q"]);
  });
});
