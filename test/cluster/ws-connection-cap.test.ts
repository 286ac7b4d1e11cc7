/**
 * The cap on a user's WebSocket connections counted across gateways in Redis, and healed when a
 * gateway goes: at once when it stops, within about the heartbeat timeout when it is SIGKILLed.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { ALIVE_TTL_MS, RENEW_MS } from "../../gateway/ws-connection-cap.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { NodeFleet } from "../support/node-fleet.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const MAX = 3;
let servers: Servers;
let cluster: TestCluster;
let fleet: NodeFleet;
const urls = new Map<string, string>();

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, { WS_MAX_CONNECTIONS_PER_USER: String(MAX) });
  fleet = new NodeFleet(cluster);
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  for (const id of ["gw-1", "gw-2"]) urls.set(id, (await cluster.add(id, ["gateway"])).url);
  await Promise.all([...urls.values()].map((u) => waitReady(u)));
});

after(async () => {
  await fleet?.killAll();
  await cluster?.stop();
  await servers?.stop();
});

const wsUrl = (url: string) => `${url.replace("http", "ws")}/ws`;

async function token(): Promise<string> {
  const api = new ApiClient(urls.get("gw-1") as string);
  await api.register(newUser("cc"));
  return api.accessToken as string;
}

/** "ready", or the close code of a refused socket; a ready socket is kept open. */
async function attempt(url: string, accessToken: string, open: RawSocket[]): Promise<string | number> {
  const s = new RawSocket(wsUrl(url), { token: accessToken });
  const result = await Promise.race([
    s.next((f) => f.type === "ready").then(() => "ready"),
    s.closed.then((c) => c.code),
  ]);
  if (result === "ready") open.push(s);
  return result;
}

test("connections on two gateways count against one cap; a close on one makes room on the other", async () => {
  const t = await token();
  const open: RawSocket[] = [];
  const [gw1, gw2] = [urls.get("gw-1") as string, urls.get("gw-2") as string];
  assert.deepEqual(
    [await attempt(gw1, t, open), await attempt(gw1, t, open), await attempt(gw2, t, open)],
    ["ready", "ready", "ready"],
  );
  assert.equal(await attempt(gw2, t, open), 4029);
  assert.equal(await attempt(gw1, t, open), 4029);
  const first = open.shift() as RawSocket;
  first.close();
  await first.closed;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await attempt(gw2, t, open), "ready");
  assert.equal(await attempt(gw2, t, open), 4029);
  for (const s of open) s.close();
});

test("many connections at once through both gateways never pass the cap", async () => {
  const t = await token();
  const open: RawSocket[] = [];
  const all = [...urls.values()];
  const outcomes = await Promise.all(
    Array.from({ length: 12 }, (_, i) => attempt(all[i % 2] as string, t, open)),
  );
  assert.equal(outcomes.filter((o) => o === "ready").length, MAX);
  for (const s of open) s.close();
});

test("a gateway that stops gives its share back at once", async () => {
  const t = await token();
  const open: RawSocket[] = [];
  const extra = await cluster.add("gw-stopping", ["gateway"]);
  await waitReady(extra.url);
  for (let i = 0; i < MAX; i++) assert.equal(await attempt(extra.url, t, open), "ready");
  assert.equal(await attempt(urls.get("gw-1") as string, t, open), 4029);
  await cluster.remove("gw-stopping");
  assert.equal(await attempt(urls.get("gw-1") as string, t, open), "ready");
  for (const s of open) s.close();
});

test("the share of a gateway killed with SIGKILL stops counting within about the heartbeat timeout", async () => {
  const t = await token();
  const open: RawSocket[] = [];
  const doomed = await fleet.start("gw-doomed", ["gateway"], {
    env: { WS_MAX_CONNECTIONS_PER_USER: String(MAX) },
  });
  await waitReady(doomed.url, 60_000);
  for (let i = 0; i < MAX; i++) assert.equal(await attempt(doomed.url, t, open), "ready");
  const gw1 = urls.get("gw-1") as string;
  assert.equal(await attempt(gw1, t, open), 4029);
  await doomed.process.kill("SIGKILL");
  const killedAt = Date.now();
  let healedAfter = -1;
  while (Date.now() - killedAt < ALIVE_TTL_MS + RENEW_MS + 10_000) {
    if ((await attempt(gw1, t, open)) === "ready") {
      healedAfter = Date.now() - killedAt;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  process.stdout.write(
    `ws-connection-cap: a SIGKILLed gateway's share stopped counting ${healedAfter} ms after the kill\n`,
  );
  assert.ok(healedAfter >= 0, "the dead gateway's connections stopped counting");
  assert.ok(healedAfter <= ALIVE_TTL_MS + 2_000, `healed ${healedAfter} ms after the kill`);
  assert.equal(await attempt(gw1, t, open), "ready");
  assert.equal(await attempt(gw1, t, open), "ready");
  assert.equal(await attempt(gw1, t, open), 4029, "the cap holds again with the live gateway's sockets");
  for (const s of open) s.close();
});
