import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import AuthService from "../../services/auth/auth.service.ts";
import ChatService from "../../services/chat/chat.service.ts";
import ProfileService from "../../services/profile/profile.service.ts";
import { newUser, startNode, tempDir, waitReady } from "../support/platform.ts";

test("requests sent while the gateway starts get 503 with Retry-After, then succeed once ready", async () => {
  const data = await tempDir();
  const node = await startNode(["gateway"], { DATA_DIR: data.dir });
  try {
    const api = new ApiClient(node.url);
    const ready = await api.raw("GET", "/health/ready");
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get("retry-after"), "1");
    assert.deepEqual((ready.body as { checks: Record<string, string> }).checks.auth, "missing");

    for (const [method, path, body] of [
      ["POST", "/auth/register", newUser()],
      ["POST", "/auth/login", { email: "a@example.test", password: "whatever-1" }],
      ["GET", "/users/me", undefined],
      ["GET", "/.well-known/jwks.json", undefined],
    ] as const) {
      const res = await api.raw(method, path, { body });
      assert.equal(res.status, 503, `${method} ${path}`);
      assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
      assert.equal((res.body as { error: { code: string } }).error.code, "SERVICE_UNAVAILABLE");
    }
    assert.equal((await api.raw("GET", "/health/live")).status, 200, "alive while not ready");

    node.broker.createService(AuthService as never);
    node.broker.createService(ProfileService as never);
    node.broker.createService(ChatService as never);
    await waitReady(node.url);
    const res = await api.raw("POST", "/auth/register", { body: newUser() });
    assert.equal(res.status, 201);
  } finally {
    await node.stop();
    await data.remove();
  }
});
