import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { test } from "node:test";
import { originOf, publicOriginResolver } from "../../../gateway/ws-origin.ts";

function req(peer: string, headers: Record<string, string>, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as IncomingMessage;
}

test("the public origin is the connection's scheme with the Host, default ports dropped", () => {
  const origin = publicOriginResolver([]);
  assert.equal(origin(req("192.0.2.5", { host: "chat.example.test:3000" })), "http://chat.example.test:3000");
  assert.equal(
    origin(req("192.0.2.5", { host: "chat.example.test:443" }, true)),
    "https://chat.example.test",
  );
  assert.equal(origin(req("192.0.2.5", {})), undefined);
  assert.equal(origin(req("192.0.2.5", { host: "bad host" })), undefined);
});

test("X-Forwarded-Proto counts only from a trusted proxy, and only as http or https", () => {
  const origin = publicOriginResolver(["10.0.0.0/8"]);
  const host = "chat.example.test";
  assert.equal(origin(req("10.1.2.3", { host, "x-forwarded-proto": "https" })), `https://${host}`);
  assert.equal(origin(req("10.1.2.3", { host, "x-forwarded-proto": "wss" })), `https://${host}`);
  assert.equal(
    origin(req("::ffff:10.1.2.3", { host, "x-forwarded-proto": "https, http" })),
    `https://${host}`,
  );
  assert.equal(origin(req("10.1.2.3", { host, "x-forwarded-proto": "gopher" })), `http://${host}`);
  assert.equal(origin(req("192.0.2.5", { host, "x-forwarded-proto": "https" })), `http://${host}`);
  assert.equal(
    publicOriginResolver([])(req("10.1.2.3", { host, "x-forwarded-proto": "https" })),
    `http://${host}`,
  );
});

test("originOf serialises an Origin the way browsers do, and refuses the opaque one", () => {
  assert.equal(originOf("HTTPS://Chat.Example.Test:443"), "https://chat.example.test");
  assert.equal(originOf("http://chat.example.test:80"), "http://chat.example.test");
  assert.equal(originOf("null"), undefined);
  assert.equal(originOf("not a url"), undefined);
});
