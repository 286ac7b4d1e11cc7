/**
 * docker/healthcheck.ts, the container and Kubernetes probe of every node role, against real
 * nodes over a real nats-server: what it reports as a cluster comes up and as a node stops.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { check, hostsGateway, sampleValue } from "../../docker/healthcheck.ts";
import { freePort, type ServerHandle, startNats } from "../harness/servers.ts";
import { type PlatformNode, startNode, tempDir, waitReady } from "../support/platform.ts";

describe("docker/healthcheck.ts", () => {
  let nats: ServerHandle;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let gateway: PlatformNode;
  let services: PlatformNode | undefined;
  let gatewayEnv: Record<string, string>;
  let servicesEnv: Record<string, string>;

  before(async () => {
    nats = await startNats();
    data = await tempDir();
    const common = { TRANSPORTER: nats.url, METRICS_ENABLED: "true", DATA_DIR: data.dir };
    gatewayEnv = {
      ...common,
      NODE_ID: "hc-gateway",
      SERVICES: "gateway",
      PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
    };
    servicesEnv = {
      ...common,
      NODE_ID: "hc-services",
      SERVICES: "services/auth,services/profile,services/chat",
      METRICS_PORT: String(await freePort()),
    };
    gateway = await startNode(["gateway"], gatewayEnv);
  });

  after(async () => {
    await services?.stop().catch(() => undefined);
    await gateway?.stop().catch(() => undefined);
    await nats?.stop();
    await data?.remove();
  });

  test("SERVICES names the gateway as a name, a folder or a file", () => {
    assert.ok(hostsGateway("gateway"));
    assert.ok(hostsGateway("services/auth, gateway/"));
    assert.ok(hostsGateway("gateway/gateway.service.ts"));
    assert.ok(!hostsGateway("services/auth,services/chat"));
    assert.ok(!hostsGateway(undefined));
  });

  test("a gateway without its services is live but not ready", async () => {
    assert.deepEqual(await check("live", gatewayEnv), {
      healthy: true,
      reason: `http://127.0.0.1:${gatewayEnv.PORT}/health/live: 200`,
    });
    const ready = await check("ready", gatewayEnv);
    assert.equal(ready.healthy, false);
    assert.match(ready.reason, /503/);
  });

  test("a service node is ready once started on the bus, and the gateway with it", async () => {
    services = await startNode(["auth", "profile", "chat"], servicesEnv);
    assert.equal((await check("live", servicesEnv)).healthy, true);
    assert.deepEqual(await check("ready", servicesEnv), {
      healthy: true,
      reason: `http://127.0.0.1:${servicesEnv.METRICS_PORT}/metrics: 200`,
    });
    await waitReady(gateway.url);
    assert.equal((await check("ready", gatewayEnv)).healthy, true);
  });

  test("a stopped node is neither live nor ready", async () => {
    await services?.stop();
    services = undefined;
    for (const mode of ["live", "ready"] as const) {
      const result = await check(mode, servicesEnv);
      assert.equal(result.healthy, false);
      assert.match(result.reason, /fetch failed/);
    }
  });

  test("without metrics a service node has nothing to probe and says so", async () => {
    const result = await check("ready", { ...servicesEnv, METRICS_ENABLED: "false" });
    assert.deepEqual(result, { healthy: true, reason: "METRICS_ENABLED=false: only the process is checked" });
  });

  test("sampleValue reads the first sample of a series, with or without labels", () => {
    const text = '# TYPE a gauge\na{node="x"} 1\nab 2\nb 0\n';
    assert.equal(sampleValue(text, "a"), 1);
    assert.equal(sampleValue(text, "ab"), 2);
    assert.equal(sampleValue(text, "b"), 0);
    assert.equal(sampleValue(text, "c"), undefined);
  });
});
