/**
 * The clustered test servers come up, and fail over: a message published through one NATS
 * server reaches a subscriber on another, a broker built by broker.config.ts from the comma list
 * of servers keeps its calls going when its server dies, and after a Redis master is killed its
 * replica takes over and a write to one of its slots succeeds again.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ServiceBroker } from "moleculer";
import { connect, StringCodec } from "nats";
import { createBrokerOptions } from "../../broker.config.ts";
import { loadConfig } from "../../lib/config.ts";
import { createRedis } from "../../lib/redis.ts";
import { startNatsCluster, startRedisCluster } from "./clusters.ts";

test("a NATS cluster of three routes a message from one server to another, and brokers fail over", async () => {
  const cluster = await startNatsCluster(3);
  const [first, , third] = cluster.servers;
  assert.ok(first && third);
  assert.equal(cluster.url.split(",").length, 3);
  const codec = StringCodec();
  const subscriber = await connect({ servers: first.url, ignoreClusterUpdates: true });
  const publisher = await connect({ servers: third.url, ignoreClusterUpdates: true });
  const brokers: ServiceBroker[] = [];
  try {
    const sub = subscriber.subscribe("t.hello", { max: 1 });
    await subscriber.flush();
    // The subscription reaches the other servers over the routes a moment after the flush.
    const got = (async () => {
      for await (const m of sub) return codec.decode(m.data);
    })();
    const sending = setInterval(() => publisher.publish("t.hello", codec.encode("over the route")), 50);
    assert.equal(await got, "over the route");
    clearInterval(sending);

    const options = (nodeID: string) =>
      createBrokerOptions(
        loadConfig({
          TRANSPORTER: cluster.url,
          NAMESPACE: `h${process.pid}`,
          NODE_ID: nodeID,
          METRICS_ENABLED: "false",
          LOG_LEVEL: "warn",
        }),
      );
    const serving = new ServiceBroker(options("serving"));
    serving.createService({
      name: "echo",
      actions: { say: (ctx) => `echo ${(ctx.params as { n: number }).n}` },
    });
    const calling = new ServiceBroker({ ...options("calling"), requestTimeout: 3_000 });
    brokers.push(serving, calling);
    await Promise.all([serving.start(), calling.start()]);
    await calling.waitForServices(["echo"], 20_000);
    assert.equal(await calling.call("echo.say", { n: 1 }), "echo 1");
    // Kill the server each broker is on (one or two of the three); both move to the survivors.
    const serverOf = (b: ServiceBroker) =>
      (b.transit as unknown as { tx: { client: { getServer(): string } } }).tx.client.getServer();
    const used = new Set([serverOf(serving), serverOf(calling)]);
    const victims = cluster.servers.filter((s) => used.has(s.url.replace("nats://", "")));
    assert.ok(victims.length >= 1 && victims.length < 3, `brokers on ${[...used].join(", ")}`);
    const killedAt = Date.now();
    await Promise.all(victims.map((s) => s.kill()));
    let answered: string | undefined;
    for (let n = 2; answered === undefined; n++) {
      try {
        answered = (await calling.call("echo.say", { n })) as string;
      } catch (err) {
        if (Date.now() - killedAt > 30_000) throw err;
        await sleep(100);
      }
    }
    process.stdout.write(
      `harness: NATS server(s) ${victims.map((v) => v.port).join(", ")} killed; a call answered again after ${Date.now() - killedAt} ms\n`,
    );
    assert.ok(!used.has(serverOf(calling)) && !used.has(serverOf(serving)));
    await Promise.all(victims.map((s) => s.restart()));
    await cluster.routed();
  } finally {
    await Promise.all(brokers.map((b) => b.stop()));
    await subscriber.close();
    await publisher.close();
    await cluster.stop();
  }
});

test("a Redis Cluster of three masters and three replicas: a killed master's replica takes over its slots", async () => {
  const cluster = await startRedisCluster();
  const redis = createRedis({ redisUrl: undefined, redisClusterNodes: cluster.nodes.split(",") }, "harness");
  assert.ok(redis);
  try {
    const topology = await cluster.topology();
    assert.equal(topology.filter((n) => n.role === "master").length, 3);
    assert.equal(topology.filter((n) => n.role === "replica").length, 3);
    await new Promise((resolve) => redis.once("ready", resolve));
    const key = "harness:failover";
    await redis.set(key, "before");
    const slot = await cluster.slotOf(key);
    const master = await cluster.masterOf(slot);
    const replica = topology.find((n) => n.masterId === master.id);
    assert.ok(replica, "the master has a replica");

    const killedAt = Date.now();
    await cluster.server(master.port).kill();
    let failures = 0;
    for (;;) {
      try {
        await redis.set(key, "after");
        break;
      } catch (err) {
        failures += 1;
        if (Date.now() - killedAt > 15_000) throw err;
        await sleep(100);
      }
    }
    const tookMs = Date.now() - killedAt;
    assert.equal(await redis.get(key), "after");
    assert.equal((await cluster.masterOf(slot)).port, replica.port, "the replica serves the slot now");
    process.stdout.write(
      `harness: Redis master ${master.port} killed; its replica ${replica.port} took over, a write to slot ${slot} succeeded after ${tookMs} ms (${failures} failed tries)\n`,
    );
    assert.ok(failures > 0, "writes failed while the slot had no master");

    // Started again, the old master rejoins as a replica of the node that took over.
    await cluster.server(master.port).restart();
    await cluster.healthy();
    const rejoined = (await cluster.topology()).find((n) => n.port === master.port);
    assert.equal(rejoined?.role, "replica");
  } finally {
    redis.disconnect();
    await cluster.stop();
  }
});
