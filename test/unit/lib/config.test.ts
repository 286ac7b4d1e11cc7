import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { configVariables, hashSlotsDefault, loadConfig } from "../../../lib/config.ts";
import { ConfigError } from "../../../lib/env.ts";

describe("loadConfig", () => {
  test("defaults give the embedded single-process platform on port 3000", () => {
    const config = loadConfig({});
    assert.equal(config.transporter, undefined);
    assert.equal(config.mongoUrl, undefined);
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.port, 3000);
    assert.equal(config.jwt.accessTtlS, 900);
    assert.deepEqual(config.hashing, {
      concurrency: hashSlotsDefault(4),
      maxWaitMs: 200,
      queueSize: 100,
      memoryKiB: 19_456,
      timeCost: 2,
      parallelism: 1,
    });
  });

  test("a cluster is configured by TRANSPORTER, MONGO_URL and REDIS_URL", () => {
    const config = loadConfig({
      TRANSPORTER: "nats://127.0.0.1:4222",
      MONGO_URL: "mongodb://127.0.0.1:27017/social",
      REDIS_URL: "redis://127.0.0.1:6379",
    });
    assert.equal(config.transporter, "nats://127.0.0.1:4222");
    assert.equal(config.mongoUrl, "mongodb://127.0.0.1:27017/social");
    assert.equal(config.redisUrl, "redis://127.0.0.1:6379");
  });

  test("TRANSPORTER takes a NATS cluster and MONGO_URL a replica set's seed list", () => {
    const transporter = "nats://10.0.0.1:4222,nats://10.0.0.2:4222, nats://user:pw@10.0.0.3:4222";
    const mongoUrl = "mongodb://app:s3cret@mongo-0:27017,mongo-1:27017,mongo-2/social?replicaSet=rs0";
    const config = loadConfig({ TRANSPORTER: transporter, MONGO_URL: mongoUrl });
    assert.equal(config.transporter, transporter);
    assert.equal(config.mongoUrl, mongoUrl);
    assert.equal(
      loadConfig({ MONGO_URL: "mongodb+srv://cluster0.example.net/social" }).mongoUrl,
      "mongodb+srv://cluster0.example.net/social",
    );
  });

  test("REDIS_CLUSTER_NODES takes a Redis Cluster's seed nodes, and excludes REDIS_URL", () => {
    assert.deepEqual(loadConfig({}).redisClusterNodes, []);
    const nodes = "10.0.0.1:7000, redis-1.example:7001,redis://:pw@10.0.0.3:7002";
    const config = loadConfig({ REDIS_CLUSTER_NODES: nodes });
    assert.deepEqual(config.redisClusterNodes, [
      "10.0.0.1:7000",
      "redis-1.example:7001",
      "redis://:pw@10.0.0.3:7002",
    ]);
    assert.deepEqual(config.ws.redisClusterNodes, config.redisClusterNodes);
    assert.equal(config.redisUrl, undefined);
    assert.throws(
      () => loadConfig({ REDIS_CLUSTER_NODES: "127.0.0.1:7000", REDIS_URL: "redis://127.0.0.1:6379" }),
      (err: unknown) => err instanceof ConfigError && err.variable === "REDIS_CLUSTER_NODES",
    );
  });

  const bad: [string, string][] = [
    ["PORT", "http"],
    ["PORT", "70000"],
    ["TRANSPORTER", "tcp://127.0.0.1:4222"],
    ["TRANSPORTER", "nats://127.0.0.1:4222,tcp://127.0.0.2:4222"],
    ["TRANSPORTER", "nats://127.0.0.1:4222,"],
    ["MONGO_URL", "not a url"],
    ["MONGO_URL", "mongodb://a:27017,,b:27017/social"],
    ["MONGO_URL", "mongodb://a:27017,b:port/social"],
    ["MONGO_URL", "redis://a:27017,b:27017/social"],
    ["MONGO_URL", "mongodb:///social"],
    ["REDIS_URL", "http://x"],
    ["REDIS_CLUSTER_NODES", "127.0.0.1"],
    ["REDIS_CLUSTER_NODES", "127.0.0.1:7000,"],
    ["REDIS_CLUSTER_NODES", "127.0.0.1:70000"],
    ["REDIS_CLUSTER_NODES", "http://127.0.0.1:7000"],
    ["LOG_LEVEL", "loud"],
    ["ARGON2_MEMORY_KIB", "1024"],
    ["ARGON2_TIME_COST", "1"],
    ["RATE_LIMIT_LOGIN_IP", "ten per minute"],
    ["METRICS_ENABLED", "maybe"],
    ["CIRCUIT_BREAKER_THRESHOLD", "2"],
  ];
  for (const [name, value] of bad) {
    test(`${name}=${value} is refused with a message naming ${name}`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === name && err.message.startsWith(name),
      );
    });
  }

  test("every variable the code reads is in the README's env var table", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    for (const name of configVariables())
      assert.match(readme, new RegExp(`\\| \`${name}\``), `${name} missing`);
  });
});
