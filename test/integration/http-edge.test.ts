/**
 * The gateway's HTTP edge on the embedded platform: bodies that do not decode, prototype keys,
 * preflights, media types, methods, validation messages, the favicon and a quiet start
 * (docs/security.md names the protection each test covers).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { ApiClient } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let api: ApiClient;
let token: string;

before(async () => {
  platform = await startEmbedded();
  api = new ApiClient(platform.url);
  token = (await api.register(newUser())).accessToken;
});
after(() => platform.stop());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text: string;
}

/** Any method, any bytes (fetch refuses TRACE and rewrites some headers). */
function send(
  method: string,
  path: string,
  options: { body?: Buffer | string; headers?: Record<string, string>; token?: string } = {},
): Promise<Answer> {
  const url = new URL(path, platform.url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-length"] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

function errorOf(body: unknown): {
  code?: string;
  message?: string;
  details?: { field: string; message: string }[];
} {
  return (body as { error?: object }).error ?? {};
}

const JSON_TYPE = { "content-type": "application/json" };

describe("bodies that do not decode (Content-Encoding)", () => {
  for (const encoding of ["gzip", "deflate", "br"]) {
    test(`bytes that are not ${encoding} are 400 INVALID_CONTENT_ENCODING`, async () => {
      const res = await send("POST", "/auth/login", {
        body: Buffer.from("this is not compressed at all"),
        headers: { ...JSON_TYPE, "content-encoding": encoding },
      });
      assert.equal(res.status, 400, res.text);
      assert.equal(errorOf(res.body).code, "INVALID_CONTENT_ENCODING");
      assert.match(errorOf(res.body).message ?? "", new RegExp(encoding));
    });
  }

  test("a truncated gzip body is 400 too, and a whole one is read", async () => {
    const user = newUser();
    const whole = gzipSync(JSON.stringify(user));
    const cut = await send("POST", "/auth/register", {
      body: whole.subarray(0, whole.length - 8),
      headers: { ...JSON_TYPE, "content-encoding": "gzip" },
    });
    assert.equal(cut.status, 400);
    assert.equal(errorOf(cut.body).code, "INVALID_CONTENT_ENCODING");
    for (const [encoding, bytes] of [
      ["gzip", gzipSync(JSON.stringify({ username: user.username, password: "wrong-password-1" }))],
      ["deflate", deflateSync(JSON.stringify({ username: user.username, password: "wrong-password-1" }))],
      ["br", brotliCompressSync(JSON.stringify({ username: user.username, password: "wrong-password-1" }))],
    ] as const) {
      const res = await send("POST", "/auth/login", {
        body: bytes,
        headers: { ...JSON_TYPE, "content-encoding": encoding },
      });
      assert.equal(res.status, 401, `${encoding}: ${res.text}`);
    }
  });

  test("an unknown Content-Encoding is 415 naming the accepted ones", async () => {
    const res = await send("POST", "/auth/login", {
      body: "{}",
      headers: { ...JSON_TYPE, "content-encoding": "compress" },
    });
    assert.equal(res.status, 415);
    assert.match(errorOf(res.body).message ?? "", /gzip, deflate, br/);
  });
});

describe("prototype keys are unknown fields", () => {
  test('PATCH /users/me {"__proto__": {"bio": "x"}} is 422 and sets nothing', async () => {
    const res = await send("PATCH", "/users/me", {
      body: '{"__proto__":{"bio":"x"}}',
      headers: JSON_TYPE,
      token,
    });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(errorOf(res.body).details?.[0]?.field, "__proto__");
    const me = await send("GET", "/users/me", { token });
    assert.equal((me.body as { bio: unknown }).bio, null);
  });

  test("constructor and prototype, at any depth, in bodies and queries, are 422", async () => {
    const bodies = [
      '{"bio":"a","constructor":{"prototype":{"bio":"x"}}}',
      '{"bio":"a","prototype":1}',
      '{"type":"group","name":"g","memberIds":[{"__proto__":{}}]}',
    ];
    for (const body of bodies) {
      const res = await send("PATCH", "/users/me", { body, headers: JSON_TYPE, token });
      assert.equal(res.status, 422, `${body}: ${res.text}`);
    }
    for (const query of ["__proto__[bio]=x", "q=a&constructor[prototype]=1", "q=a&q%5B__proto__%5D=1"]) {
      const res = await send("GET", `/users?${query}`, { token });
      assert.equal(res.status, 422, `${query}: ${res.text}`);
      assert.equal(errorOf(res.body).code, "VALIDATION_FAILED");
    }
  });
});

describe("preflights and other methods", () => {
  test("OPTIONS with Access-Control-Request-Method never runs the action (logout stays undone)", async () => {
    const res = await send("OPTIONS", "/auth/logout", {
      token,
      headers: { origin: "https://elsewhere.example", "access-control-request-method": "POST" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.allow, "POST, OPTIONS");
    assert.equal(res.headers["access-control-allow-origin"], undefined);
    assert.equal((await send("GET", "/users/me", { token })).status, 200, "the session is not revoked");
  });

  test("a plain OPTIONS answers the path's methods and runs nothing", async () => {
    const res = await send("OPTIONS", "/users/me", { token });
    assert.equal(res.status, 204);
    assert.equal(res.headers.allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
  });

  test("a known path with a method it does not take is 405 with Allow", async () => {
    for (const [method, path, allow] of [
      ["PUT", "/users/me", "GET, HEAD, PATCH, DELETE, OPTIONS"],
      ["TRACE", "/chats", "GET, HEAD, POST, OPTIONS"],
      ["DELETE", "/auth/login", "POST, OPTIONS"],
      ["POST", "/users/some-id", "GET, HEAD, OPTIONS"],
      ["PATCH", "/health/live", "GET, HEAD, OPTIONS"],
    ] as const) {
      const res = await send(method, path, { token });
      assert.equal(res.status, 405, `${method} ${path}: ${res.text}`);
      assert.equal(res.headers.allow, allow);
      assert.equal(errorOf(res.body).code, "METHOD_NOT_ALLOWED");
    }
    assert.equal((await send("POST", "/no/such/path", { token })).status, 404);
  });

  test("HEAD answers as GET does, without a body", async () => {
    const res = await send("HEAD", "/users/me", { token });
    assert.equal(res.status, 200);
    assert.equal(res.text, "");
  });
});

describe("media types", () => {
  test("a JSON body sent as text/plain is 415 naming application/json", async () => {
    const res = await send("POST", "/auth/login", {
      body: JSON.stringify({ username: "someone", password: "whatever-1" }),
      headers: { "content-type": "text/plain" },
    });
    assert.equal(res.status, 415, res.text);
    assert.equal(errorOf(res.body).code, "UNSUPPORTED_MEDIA_TYPE");
    assert.match(errorOf(res.body).message ?? "", /application\/json/);
    assert.match(errorOf(res.body).message ?? "", /text\/plain/);
  });

  test("no body at all is fine where no field is required; a JSON array body is 422", async () => {
    const fresh = await new ApiClient(platform.url).register(newUser());
    assert.equal((await send("POST", "/auth/logout", { token: fresh.accessToken })).status, 204);
    const array = await send("PATCH", "/users/me", { body: "[]", headers: JSON_TYPE, token });
    assert.equal(array.status, 422);
  });
});

describe("validation messages name the field, what was sent and what is accepted", () => {
  test("login with neither email nor username, or with both", async () => {
    const neither = await send("POST", "/auth/login", { body: '{"password":"x"}', headers: JSON_TYPE });
    assert.equal(neither.status, 422);
    assert.match(
      errorOf(neither.body).details?.[0]?.message ?? "",
      /exactly one of 'email' and 'username'.*none/,
    );
    const both = await send("POST", "/auth/login", {
      body: '{"email":"a@b.test","username":"abc","password":"x"}',
      headers: JSON_TYPE,
    });
    assert.equal(both.status, 422);
    assert.match(errorOf(both.body).details?.[0]?.message ?? "", /it has 'email' and 'username'/);
  });

  test('{"type": "dm"} names the sent value and the allowed ones in their places', async () => {
    const res = await send("POST", "/chats", { body: '{"type":"dm"}', headers: JSON_TYPE, token });
    assert.equal(res.status, 422);
    const message = errorOf(res.body).details?.find((d) => d.field === "type")?.message ?? "";
    assert.equal(message, `The 'type' field must be one of: direct, group; got "dm"`);
  });

  test("an http:// avatar URL says https is required", async () => {
    const res = await send("PATCH", "/users/me", {
      body: '{"avatarUrl":"http://img.example/a.png"}',
      headers: JSON_TYPE,
      token,
    });
    assert.equal(res.status, 422);
    const message = errorOf(res.body).details?.[0]?.message ?? "";
    assert.match(message, /https:\/\//);
    assert.match(message, /got "http:\/\/img\.example\/a\.png"/);
  });

  test("null goes only where a field takes it, and an empty query value is refused", async () => {
    const res = await send("PATCH", "/users/me", { body: '{"displayName":null}', headers: JSON_TYPE, token });
    assert.equal(res.status, 422, res.text);
    assert.equal(
      (await send("PATCH", "/users/me", { body: '{"bio":null}', headers: JSON_TYPE, token })).status,
      200,
    );
    assert.equal((await send("GET", "/users?q=a&limit=", { token })).status, 422);
  });
});

describe("the web client's icon and a quiet start", () => {
  test("/favicon.ico is an icon", async () => {
    const res = await fetch(`${platform.url}/favicon.ico`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/x-icon");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 1, 0]);
  });

  test("a clean start logs no warning", () => {
    const script = [
      `import { startEmbedded } from ${JSON.stringify(new URL("../support/platform.ts", import.meta.url).href)};`,
      `const p = await startEmbedded({ LOG_LEVEL: "warn" });`,
      "await new Promise((r) => setTimeout(r, 300));",
      "await p.stop();",
    ].join("\n");
    const dir = mkdtempSync(path.join(os.tmpdir(), "quiet-start-"));
    const file = path.join(dir, "start.mjs");
    writeFileSync(file, script);
    const run = spawnSync(process.execPath, [file], { encoding: "utf8", timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(run.status, 0, run.stderr);
    const warnings = run.stdout.split("\n").filter((line) => line.includes('"level":40'));
    assert.deepEqual(warnings, []);
  });
});
