import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { startNode } from "../support/platform.ts";

async function metricsAddress(env: Record<string, string>): Promise<AddressInfo> {
  const node = await startNode([], { METRICS_ENABLED: "true", METRICS_PORT: "0", ...env });
  try {
    const reporters = (node.broker.metrics as unknown as { reporter: { server: Server }[] }).reporter;
    const server = reporters[0]?.server;
    assert.ok(server, "a Prometheus reporter with its server");
    if (!server.listening) await new Promise((r) => server.once("listening", r));
    const address = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${address.port}/metrics`);
    assert.equal(res.status, 200);
    return address;
  } finally {
    await node.stop();
  }
}

describe("/metrics", () => {
  test("listens on 127.0.0.1 only unless METRICS_HOST says otherwise", async () => {
    assert.equal((await metricsAddress({})).address, "127.0.0.1");
    assert.equal((await metricsAddress({ METRICS_HOST: "0.0.0.0" })).address, "0.0.0.0");
  });
});
