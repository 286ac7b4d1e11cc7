/** The cap on a user's WebSocket connections on a lone gateway (counted in memory). */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const MAX = 3;
type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let wsUrl: string;

before(async () => {
  platform = await startEmbedded({ WS_MAX_CONNECTIONS_PER_USER: String(MAX) });
  wsUrl = `${platform.url.replace("http", "ws")}/ws`;
});
after(() => platform.stop());

async function signedIn(): Promise<ApiClient> {
  const api = new ApiClient(platform.url);
  await api.register(newUser("cap"));
  return api;
}

async function opened(token: string): Promise<RawSocket> {
  const s = new RawSocket(wsUrl, { token });
  await s.next((f) => f.type === "ready");
  return s;
}

test("the connection over WS_MAX_CONNECTIONS_PER_USER is closed with 4029; one closing makes room", async () => {
  const api = await signedIn();
  const token = api.accessToken as string;
  const sockets = [];
  for (let i = 0; i < MAX; i++) sockets.push(await opened(token));
  const over = new RawSocket(wsUrl, { token });
  const closed = await over.closed;
  assert.equal(closed.code, 4029);
  assert.equal(over.frames.length, 0, "no ready for the refused one");

  const other = await signedIn();
  const theirs = await opened(other.accessToken as string);
  theirs.close();

  const first = sockets.shift() as RawSocket;
  first.close();
  await first.closed;
  await new Promise((r) => setTimeout(r, 100));
  const again = await opened(token);
  for (const s of [...sockets, again]) s.close();
});

test("connections opened at once by one user never exceed the cap", async () => {
  const api = await signedIn();
  const token = api.accessToken as string;
  const attempts = Array.from({ length: 10 }, () => new RawSocket(wsUrl, { token }));
  const outcomes = await Promise.all(
    attempts.map((s) =>
      Promise.race([s.next((f) => f.type === "ready").then(() => "ready"), s.closed.then((c) => c.code)]),
    ),
  );
  assert.equal(outcomes.filter((o) => o === "ready").length, MAX);
  assert.equal(outcomes.filter((o) => o === 4029).length, 10 - MAX);
  for (const s of attempts) s.close();
});

test("the client library keeps trying after 4029 and connects once there is room", async () => {
  const api = await signedIn();
  const token = api.accessToken as string;
  const sockets = [];
  for (let i = 0; i < MAX; i++) sockets.push(await opened(token));
  const states: string[] = [];
  const client = new ChatSocket(api, {
    minDelayMs: 50,
    maxDelayMs: 200,
    onStateChange: (s) => states.push(s),
  });
  const connected = client.connect();
  while (states.filter((s) => s === "closed").length < 2) await new Promise((r) => setTimeout(r, 20));
  assert.equal(client.isOpen, false);
  sockets.pop()?.close();
  await connected;
  assert.ok(client.userId);
  client.close();
  for (const s of sockets) s.close();
});
