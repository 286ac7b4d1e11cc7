/**
 * The Grafana dashboard asks for metrics the code exports: a node with every service, metrics on
 * and a real NATS transporter is started, some traffic sent, and every series name in the
 * dashboard's queries must be one the node serves on /metrics or has registered (a counter or
 * histogram with no sample yet is not written until it has one). The platform's own metrics
 * (`social_*`) must each be on some panel.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type ServerHandle, startNats } from "../harness/servers.ts";
import { newUser, type PlatformNode, startNode, tempDir, waitReady } from "../support/platform.ts";
import { ROOT } from "./platform-env.ts";

const DASHBOARD = path.join(ROOT, "docker/grafana/dashboards/platform.json");

interface Dashboard {
  panels: { targets?: { expr: string }[] }[];
  templating: { list: { query?: { query?: string } }[] };
}

const PROMQL_WORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
]);

/** The series names a PromQL expression reads: identifiers that are not functions, keywords or labels. */
function seriesNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, "")
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/"[^"]*"/g, "");
  return [...bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(\()?/g)]
    .filter(([, name, call]) => !call && !PROMQL_WORDS.has(name as string))
    .map(([, name]) => name as string)
    .filter((name) => !/^\d/.test(name));
}

function dashboardSeries(): Set<string> {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.map((v) => (v.query?.query ?? "").replace(/^label_values\((\w+),.*$/, "$1")),
  ];
  return new Set(exprs.flatMap(seriesNames));
}

describe("docker/grafana/dashboards/platform.json", () => {
  let nats: ServerHandle;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let node: PlatformNode;
  const exported = new Set<string>();
  const families = new Set<string>();

  before(async () => {
    nats = await startNats();
    data = await tempDir();
    node = await startNode(["auth", "profile", "chat", "gateway"], {
      NODE_ID: "dashboard-check",
      TRANSPORTER: nats.url,
      METRICS_ENABLED: "true",
      DATA_DIR: data.dir,
    });
    await waitReady(node.url);
    const user = newUser("dash");
    const res = await fetch(`${node.url}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(user),
    });
    assert.equal(res.status, 201, await res.text());
    await fetch(`${node.url}/users/nobody`);

    const reporter = (
      node.broker.metrics as unknown as { reporter: { server: { address(): { port: number } } }[] }
    ).reporter[0];
    const text = await (await fetch(`http://127.0.0.1:${reporter?.server.address().port}/metrics`)).text();
    for (const line of text.split("\n")) {
      const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1];
      if (name && !line.startsWith("#")) exported.add(name);
    }
    for (const metric of node.broker.metrics.list() as { name: string; type: string }[]) {
      const name = metric.name.replace(/[.-]/g, "_");
      families.add(name);
      exported.add(name);
      if (/histogram/i.test(metric.type))
        for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(name + suffix);
    }
  });

  after(async () => {
    await node?.stop();
    await nats?.stop();
    await data?.remove();
  });

  test("the node serves Moleculer's request and transit metrics after traffic", () => {
    for (const name of [
      "moleculer_request_total",
      "moleculer_request_time_bucket",
      "moleculer_transporter_packets_sent_total",
    ])
      assert.ok(exported.has(name), `${name} not served`);
  });

  test("every series the dashboard queries is exported by the code", () => {
    const used = dashboardSeries();
    assert.ok(used.size >= 15, `only ${used.size} series`);
    const unknown = [...used].filter((name) => !exported.has(name));
    assert.deepEqual(unknown, []);
  });

  test("each of the platform's own metrics is on a panel", () => {
    const used = [...dashboardSeries()];
    const own = [...families].filter((name) => name.startsWith("social_"));
    const missing = own.filter((name) => !used.some((u) => u === name || u.startsWith(`${name}_`)));
    assert.deepEqual(missing, []);
  });

  test("seriesNames leaves out functions, keywords, labels and ranges", () => {
    assert.deepEqual(
      seriesNames(
        'histogram_quantile(0.99, sum by (le, action) (rate(a_bucket{node=~"$node"}[$__rate_interval])))',
      ),
      ["a_bucket"],
    );
    assert.deepEqual(seriesNames('count(b{x="1"} == 1) or on (node) c_total'), ["b", "c_total"]);
  });
});
