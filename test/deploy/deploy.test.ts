/**
 * The deployment files in docker/, checked offline: compose by docker-compose itself, HAProxy by
 * `haproxy -c`, Kubernetes by the API schemas of kubernetes-models plus cross-checks, and all of
 * them against the code (every env var loadConfig reads, the service files, the ports, the object
 * store the file store's nodes reach). The tools are installed by scripts/install-test-servers.sh;
 * a missing one fails the test, never skips it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { parse } from "yaml";
import { hostsGateway } from "../../docker/healthcheck.ts";
import {
  type Container,
  containerEnv,
  isPlatformContainer,
  loadManifests,
  type Manifest,
  objectStoreErrors,
  parseManifests,
  referenceErrors,
  S3_KEY_PAIR,
  schemaErrors,
  workloads,
} from "./k8s-manifests.ts";
import {
  allServiceFiles,
  CONFIG_VARIABLES,
  configFor,
  loadsGateway,
  opensFileStore,
  ROOT,
  servicesOf,
} from "./platform-env.ts";

const DOCKER = path.join(ROOT, "docker");
const COMPOSE = path.join(DOCKER, "compose.yaml");
const HAPROXY = path.join(DOCKER, "haproxy/haproxy.cfg");
const K8S = path.join(DOCKER, "k8s");
const PLATFORM_IMAGE = "social-platform:latest";
const INSTALL_HINT = "install it with scripts/install-test-servers.sh";

/** Runs a checking tool; a tool that is not installed fails the test. */
function run(cmd: string, args: string[]) {
  const result = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
    assert.fail(`${cmd} is not installed: ${INSTALL_HINT}`);
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A copy of `file` with `from` replaced by `to`, in a temporary folder beside nothing else. */
function brokenCopy(file: string, from: string, to: string): { file: string; remove(): void } {
  const text = readFileSync(file, "utf8");
  assert.ok(text.includes(from), `${from} not found in ${file}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "deploy-check-"));
  const copy = path.join(dir, path.basename(file));
  writeFileSync(copy, text.replace(from, to));
  return { file: copy, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

interface ComposeService {
  image?: string;
  command?: string[] | string;
  environment?: Record<string, string | null>;
  deploy?: { replicas?: number };
  ports?: unknown[];
  networks?: Record<string, { ipv4_address?: string; aliases?: string[] } | null>;
  volumes?: (string | { source?: string; target?: string })[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const isKeyPair = (name: string) => (S3_KEY_PAIR as readonly string[]).includes(name);
const SEAWEEDFS_S3_PORT = 8333;

/**
 * The object store of the resolved compose file and its wiring: every platform node selects the
 * s3 store; each that opens it reaches, by S3_ENDPOINT, a service (or network alias) serving S3 on
 * that port, waits for it to be healthy and signs with the key pair the store is given; the others
 * get no key pair. The store has a pinned image, a named volume for its data, a health check and,
 * for SeaweedFS, telemetry off.
 */
function composeObjectStoreErrors(file: ComposeFile): string[] {
  const errors: string[] = [];
  const stores = new Set<string>();
  const named = (name: string, s: ComposeService) => [
    name,
    ...Object.values(s.networks ?? {}).flatMap((n) => n?.aliases ?? []),
  ];
  const argsOf = (s: ComposeService) =>
    Array.isArray(s.command) ? s.command : (s.command ?? "").split(/\s+/).filter(Boolean);
  for (const [name, s] of Object.entries(file.services).filter(([, s]) => s.image === PLATFORM_IMAGE)) {
    const env = s.environment as Record<string, string>;
    const config = configFor(env);
    if (config.files.store !== "s3") {
      errors.push(`${name}: FILE_STORE is not s3`);
      continue;
    }
    const opens = opensFileStore(env.SERVICES ?? "");
    for (const variable of S3_KEY_PAIR) {
      if (opens && !env[variable]) errors.push(`${name}: ${variable} is not set`);
      if (!opens && variable in env) errors.push(`${name}: has ${variable} but opens no file store`);
    }
    if (!opens) continue;
    const endpoint = config.files.s3.endpoint;
    if (!endpoint) {
      errors.push(`${name}: S3_ENDPOINT is not set`);
      continue;
    }
    const url = new URL(endpoint);
    const [storeName, store] =
      Object.entries(file.services).find(([n, other]) => named(n, other).includes(url.hostname)) ?? [];
    if (!storeName || !store) {
      errors.push(`${name}: S3_ENDPOINT names ${url.hostname}, which is no service`);
      continue;
    }
    stores.add(storeName);
    const args = argsOf(store);
    const s3Port = Number(
      args.map((a) => /^-s3\.port=(\d+)$/.exec(a)?.[1]).find(Boolean) ?? SEAWEEDFS_S3_PORT,
    );
    if (/seaweedfs/.test(store.image ?? "") && !args.includes("-s3") && args[0] !== "mini")
      errors.push(`${storeName}: runs no S3 gateway (server -s3, or mini)`);
    if (Number(url.port || 80) !== s3Port)
      errors.push(`${name}: S3_ENDPOINT port ${url.port || 80} is not ${storeName}'s S3 port ${s3Port}`);
    const dependsOn = Array.isArray(s.depends_on) ? {} : (s.depends_on ?? {});
    if (dependsOn[storeName]?.condition !== "service_healthy")
      errors.push(`${name}: does not wait for ${storeName} to be healthy`);
    for (const variable of S3_KEY_PAIR) {
      if (env[variable] !== store.environment?.[variable])
        errors.push(`${name}: ${variable} is not the one ${storeName} is given`);
    }
  }
  if (stores.size === 0) errors.push("no platform node reaches an object store");
  for (const storeName of stores) {
    const store = file.services[storeName] as ComposeService;
    if (!/^[^:]+:[\w][\w.-]*$/.test(store.image ?? "") || store.image?.endsWith(":latest"))
      errors.push(`${storeName}: image ${store.image} is not pinned to a version tag`);
    if (/seaweedfs/.test(store.image ?? "") && !argsOf(store).includes("-master.telemetry=false"))
      errors.push(`${storeName}: SeaweedFS telemetry is not turned off (-master.telemetry=false)`);
    const test = store.healthcheck?.test;
    if (!test || store.healthcheck?.disable || (Array.isArray(test) && test[0] === "NONE"))
      errors.push(`${storeName}: no healthcheck`);
    const dataVolume = (store.volumes ?? []).some((v) => {
      const [source, target] = typeof v === "string" ? v.split(":") : [v.source, v.target];
      return source !== undefined && source in (file.volumes ?? {}) && target === "/data";
    });
    if (!dataVolume) errors.push(`${storeName}: no named volume on /data`);
  }
  return errors;
}

describe("docker/compose.yaml", () => {
  let resolved: ComposeFile;
  let services: Record<string, ComposeService>;
  let platform: [string, ComposeService][];

  before(() => {
    const result = run("docker-compose", ["-f", COMPOSE, "config"]);
    assert.equal(result.status, 0, result.output);
    resolved = parse(result.output) as ComposeFile;
    services = resolved.services;
    platform = Object.entries(services).filter(([, s]) => s.image === PLATFORM_IMAGE);
  });

  test("docker-compose accepts the file (config -q)", () => {
    const result = run("docker-compose", ["-f", COMPOSE, "config", "-q"]);
    assert.equal(result.status, 0, result.output);
  });

  test("docker-compose rejects a broken copy, so the check above can fail", () => {
    const broken = brokenCopy(
      COMPOSE,
      "    deploy:\n      replicas: 3",
      "    deploy:\n      replicas: three",
    );
    try {
      const result = run("docker-compose", ["-f", broken.file, "config", "-q"]);
      assert.notEqual(result.status, 0);
      assert.match(result.output, /replicas/);
    } finally {
      broken.remove();
    }
  });

  test("gateway, auth, profile and chat run from the image, each with several replicas", () => {
    assert.deepEqual(platform.map(([name]) => name).sort(), ["auth", "chat", "gateway", "profile"]);
    for (const [name, s] of platform) assert.ok((s.deploy?.replicas ?? 1) >= 2, `${name} has one replica`);
    const loaded = platform.flatMap(([, s]) => servicesOf(s.environment?.SERVICES ?? ""));
    assert.deepEqual([...new Set(loaded)].sort(), allServiceFiles());
  });

  test("every platform node gets every variable the code reads, except a shared NODE_ID and, where no file store is opened, the S3 key pair", () => {
    for (const [name, s] of platform) {
      const env = s.environment ?? {};
      const opens = opensFileStore(env.SERVICES ?? "");
      for (const variable of CONFIG_VARIABLES) {
        if (variable === "NODE_ID") {
          // Replicas share their env; an id set here would be the same on every one of them.
          assert.ok(!(variable in env), `${name}: NODE_ID must stay unset`);
        } else if (isKeyPair(variable) && !opens) {
          // Auth and profile never open the file store: they are not given its key pair.
          assert.ok(!(variable in env), `${name}: ${variable} given to a node that opens no file store`);
        } else {
          assert.ok(variable in env, `${name}: ${variable} missing`);
        }
      }
      assert.doesNotThrow(() => configFor(env as Record<string, string>), `${name}: invalid env`);
    }
  });

  test("a bad value in the env is caught, as the node would refuse it", () => {
    const [, gateway] = platform.find(([name]) => name === "gateway") ?? assert.fail("no gateway");
    assert.throws(
      () => configFor({ ...(gateway.environment as Record<string, string>), PORT: "http" }),
      /PORT/,
    );
    assert.throws(
      () => configFor({ ...(gateway.environment as Record<string, string>), TRUSTED_PROXIES: "not-an-ip" }),
      /not-an-ip/,
    );
  });

  test("an S3 object store runs (pinned image, volume, healthcheck, no telemetry) and is wired to gateways and chat nodes", () => {
    assert.deepEqual(composeObjectStoreErrors(resolved), []);
    const stores = Object.entries(services).filter(([, s]) => /seaweedfs/.test(s.image ?? ""));
    assert.equal(stores.length, 1, "one SeaweedFS service");
    const roles = platform
      .filter(([, s]) => opensFileStore(s.environment?.SERVICES ?? ""))
      .map(([name]) => name)
      .sort();
    assert.deepEqual(roles, ["chat", "gateway"]);
  });

  test("the object-store check catches a wrong endpoint, a key pair that differs and telemetry on", () => {
    const broken = structuredClone(resolved);
    const [storeName] =
      Object.entries(broken.services).find(([, s]) => /seaweedfs/.test(s.image ?? "")) ?? [];
    assert.ok(storeName);
    const store = broken.services[storeName] as ComposeService;
    store.command = (store.command as string[]).filter((a) => a !== "-master.telemetry=false");
    const gateway = broken.services.gateway?.environment ?? assert.fail("no gateway");
    gateway.S3_ENDPOINT = "http://objectstor:8333";
    const chat = broken.services.chat?.environment ?? assert.fail("no chat");
    chat.AWS_SECRET_ACCESS_KEY = "another-secret";
    const auth = broken.services.auth?.environment ?? assert.fail("no auth");
    Object.assign(auth, { AWS_ACCESS_KEY_ID: "social", AWS_SECRET_ACCESS_KEY: "a-secret" });
    const errors = composeObjectStoreErrors(broken);
    for (const expected of [
      /gateway: S3_ENDPOINT names objectstor, which is no service/,
      /chat: AWS_SECRET_ACCESS_KEY is not the one \S+ is given/,
      /auth: has AWS_ACCESS_KEY_ID but opens no file store/,
      /telemetry is not turned off/,
    ])
      assert.ok(
        errors.some((e) => expected.test(e)),
        `${expected} not in:\n${errors.join("\n")}`,
      );
  });

  test("gateways trust X-Forwarded-For from the load balancer's address alone", () => {
    const lb = services.lb?.networks?.platform?.ipv4_address;
    assert.ok(lb, "the load balancer has no fixed address");
    for (const [name, s] of platform) assert.equal(s.environment?.TRUSTED_PROXIES, lb, name);
  });

  test("only the load balancer, Prometheus and Grafana publish ports", () => {
    const published = Object.entries(services)
      .filter(([, s]) => (s.ports ?? []).length > 0)
      .map(([name]) => name);
    assert.deepEqual(published.sort(), ["grafana", "lb", "prometheus"]);
  });

  test("Prometheus finds every role's replicas by DNS on METRICS_PORT", () => {
    const config = parse(readFileSync(path.join(DOCKER, "prometheus/prometheus.yml"), "utf8")) as {
      scrape_configs: { dns_sd_configs?: { names: string[]; port: number; type: string }[] }[];
    };
    const sd = config.scrape_configs.flatMap((c) => c.dns_sd_configs ?? []);
    assert.deepEqual(sd.flatMap((c) => c.names).sort(), platform.map(([name]) => name).sort());
    for (const [name, s] of platform) {
      const port = configFor(s.environment as Record<string, string>).metricsPort;
      assert.ok(
        sd.some((c) => c.names.includes(name) && c.port === port && c.type === "A"),
        `${name}: not scraped on ${port}`,
      );
    }
  });

  test("HAProxy accepts its config and sends traffic to the gateways' PORT", () => {
    const result = run("haproxy", ["-c", "-f", HAPROXY]);
    assert.equal(result.status, 0, result.output);
    const [, gateway] = platform.find(([name]) => name === "gateway") ?? assert.fail("no gateway");
    const port = configFor(gateway.environment as Record<string, string>).port;
    assert.match(
      readFileSync(HAPROXY, "utf8"),
      new RegExp(`^\\s*server-template \\S+ \\d+ gateway:${port}$`, "m"),
    );
    assert.match(readFileSync(HAPROXY, "utf8"), /uri \/health\/ready/);
  });

  test("haproxy -c rejects a broken config, so the check above can fail", () => {
    const broken = brokenCopy(HAPROXY, "balance leastconn", "balance fewestconn");
    try {
      assert.notEqual(run("haproxy", ["-c", "-f", broken.file]).status, 0);
    } finally {
      broken.remove();
    }
  });

  test("Grafana's dashboards use the provisioned datasource and are mounted where the provider reads", () => {
    const datasources = parse(
      readFileSync(path.join(DOCKER, "grafana/provisioning/datasources/prometheus.yaml"), "utf8"),
    ) as { datasources: { uid: string; url: string }[] };
    const uids = new Set(datasources.datasources.map((d) => d.uid));
    const dashboard = JSON.parse(
      readFileSync(path.join(DOCKER, "grafana/dashboards/platform.json"), "utf8"),
    ) as {
      panels: { type: string; datasource?: { uid: string }; targets?: { datasource?: { uid: string } }[] }[];
    };
    const panels = dashboard.panels.filter((p) => p.type !== "row");
    assert.ok(panels.length >= 10);
    for (const p of panels) {
      assert.ok(uids.has(p.datasource?.uid ?? ""), "panel datasource");
      for (const t of p.targets ?? []) assert.ok(uids.has(t.datasource?.uid ?? ""), "target datasource");
    }
    const provider = parse(
      readFileSync(path.join(DOCKER, "grafana/provisioning/dashboards/platform.yaml"), "utf8"),
    ) as { providers: { options: { path: string } }[] };
    const mounts = (services.grafana?.volumes ?? []).map((v) =>
      typeof v === "string" ? v.split(":")[1] : v.target,
    );
    for (const p of provider.providers) assert.ok(mounts.includes(p.options.path), p.options.path);
  });
});

describe("docker/k8s", () => {
  const manifests = loadManifests(K8S);
  const platformContainers = workloads(manifests).flatMap((w) =>
    w.containers.filter(isPlatformContainer).map((c) => ({ workload: w, container: c })),
  );
  /** The env a platform container starts with, its pod name as NODE_ID. */
  const envOf = (c: Container) => ({ ...containerEnv(manifests, c).env, NODE_ID: "pod-0" });
  const servicesValue = (c: Container) => c.env?.find((e) => e.name === "SERVICES")?.value ?? "";
  const first = platformContainers[0] ?? assert.fail("no platform Deployment");
  const sharedConfig = configFor(envOf(first.container));
  const endpoints = {
    port: sharedConfig.port,
    metricsPort: sharedConfig.metricsPort,
    root: ROOT,
    isGateway: (c: { env?: { name: string; value?: string }[] }) =>
      loadsGateway(c.env?.find((e) => e.name === "SERVICES")?.value ?? ""),
  };

  test("every document is valid against the Kubernetes API schemas", async () => {
    const kinds = new Set(manifests.map((m) => m.doc.kind));
    for (const kind of [
      "Namespace",
      "ConfigMap",
      "Secret",
      "Deployment",
      "StatefulSet",
      "Service",
      "HorizontalPodAutoscaler",
      "PodDisruptionBudget",
    ])
      assert.ok(kinds.has(kind), `no ${kind}`);
    assert.deepEqual(await schemaErrors(manifests), []);
  });

  test("the schema check rejects a broken manifest", async () => {
    const broken = parseManifests(
      [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  selector: {}\n  template: {spec: {containers: []}}",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: y}\nspec: {maxReplicas: 3}",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: z}",
      ].join("\n---\n"),
      "broken.yaml",
    );
    const errors = await schemaErrors(broken);
    assert.equal(errors.length, 3, errors.join("\n"));
    assert.match(errors[0] ?? "", /replicas must be integer/);
    assert.match(errors[1] ?? "", /scaleTargetRef/);
    assert.match(errors[2] ?? "", /no schema/);
  });

  test("selectors, ports, probes, HPAs, PDBs and references agree with each other and the code", () => {
    assert.deepEqual(referenceErrors(manifests, endpoints), []);
  });

  test("the cross-checks catch a probe on a path the node does not serve and a missing budget", () => {
    const text = readFileSync(path.join(K8S, "30-auth.yaml"), "utf8")
      .replace(
        "path: /metrics\n              port: metrics\n            periodSeconds: 10",
        "path: /health/live\n              port: metrics\n            periodSeconds: 10",
      )
      .replace(
        /kind: PodDisruptionBudget[\s\S]*$/,
        "kind: ConfigMap\nmetadata: {name: spare, namespace: social}\n",
      );
    const changed = [
      ...manifests.filter((m) => m.file !== "30-auth.yaml"),
      ...parseManifests(text, "30-auth.yaml"),
    ];
    const errors = referenceErrors(changed, endpoints);
    assert.ok(
      errors.some((e) => /livenessProbe \/health\/live is not served on port 3030/.test(e)),
      errors.join("\n"),
    );
    assert.ok(
      errors.some((e) => /Deployment\/auth: no PodDisruptionBudget/.test(e)),
      errors.join("\n"),
    );
  });

  test("the ConfigMap and Secrets carry every variable the code reads (the S3 key pair only to nodes that open the file store); NODE_ID comes from the pod name", () => {
    assert.ok(platformContainers.length >= 4);
    for (const { workload, container } of platformContainers) {
      const where = `${workload.kind}/${workload.name}`;
      const { env } = containerEnv(manifests, container);
      const opens = opensFileStore(servicesValue(container));
      for (const variable of CONFIG_VARIABLES.filter((v) => v !== "NODE_ID")) {
        if (isKeyPair(variable) && !opens)
          assert.ok(!(variable in env), `${where}: ${variable} given to a node that opens no file store`);
        else assert.ok(variable in env, `${where}: ${variable} missing from its ConfigMap, Secrets and env`);
      }
      assert.ok(!("NODE_ID" in env), `${where}: NODE_ID would be shared by every replica`);
    }
    for (const m of manifests.filter((m) => m.doc.kind === "Deployment")) {
      const spec = m.doc.spec as {
        template: {
          spec: {
            containers: { env?: { name: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[] }[];
          };
        };
      };
      for (const c of spec.template.spec.containers) {
        const nodeId = c.env?.find((e) => e.name === "NODE_ID");
        assert.equal(
          nodeId?.valueFrom?.fieldRef?.fieldPath,
          "metadata.name",
          `${m.doc.metadata.name}: NODE_ID`,
        );
      }
    }
  });

  test("each Deployment's env starts a node, and together they load every service once", () => {
    const loaded: string[] = [];
    for (const m of manifests.filter((m) => m.doc.kind === "Deployment")) {
      const spec = m.doc.spec as {
        template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } };
      };
      for (const c of spec.template.spec.containers) {
        const own = Object.fromEntries(
          (c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]),
        );
        assert.doesNotThrow(() => configFor(envOf(c as Container)), m.doc.metadata.name);
        const services = own.SERVICES ?? assert.fail(`${m.doc.metadata.name}: no SERVICES`);
        assert.equal(hostsGateway(services), loadsGateway(services), `${services}: healthcheck disagrees`);
        loaded.push(...servicesOf(services));
      }
    }
    assert.deepEqual(loaded.sort(), allServiceFiles());
  });
});

describe("docker/k8s object store", () => {
  const manifests = loadManifests(K8S);
  const servicesValue = (c: Container) => c.env?.find((e) => e.name === "SERVICES")?.value ?? "";
  const nodes = {
    opensFileStore: (c: Container) => opensFileStore(servicesValue(c)),
    storeOf: (env: Record<string, string>) => configFor({ ...env, NODE_ID: "pod-0" }).files.store,
  };
  const replaced = (file: string, changes: [string | RegExp, string][]): Manifest[] => {
    let text = readFileSync(path.join(K8S, file), "utf8");
    for (const [from, to] of changes) {
      assert.ok(typeof from === "string" ? text.includes(from) : from.test(text), `${from} not in ${file}`);
      text = text.replace(from, to);
    }
    return [...manifests.filter((m) => m.file !== file), ...parseManifests(text, file)];
  };

  test("gateway and chat reach a StatefulSet's S3 port through the Service S3_ENDPOINT names, with its key pair", () => {
    assert.deepEqual(objectStoreErrors(manifests, nodes), []);
    const store = workloads(manifests).find((w) => w.kind === "StatefulSet") ?? assert.fail("no StatefulSet");
    assert.match(store.containers[0]?.image ?? "", /^chrislusf\/seaweedfs:\d+\.\d+$/);
  });

  test("the cross-checks catch an endpoint naming no Service, a key the Secret lacks and telemetry on", () => {
    const wrongHost = objectStoreErrors(
      replaced("10-config.yaml", [["http://objectstore.social.", "http://objectstor.social."]]),
      nodes,
    );
    assert.ok(
      wrongHost.some((e) => /S3_ENDPOINT names Service social\/objectstor, which is not declared/.test(e)),
      wrongHost.join("\n"),
    );
    const changed = replaced("15-objectstore.yaml", [
      ["key: AWS_SECRET_ACCESS_KEY", "key: AWS_SECRET_KEY"],
      [/^\s+- -master\.telemetry=false\n/m, ""],
    ]);
    const errors = [
      ...objectStoreErrors(changed, nodes),
      ...referenceErrors(changed, {
        port: 3000,
        metricsPort: 3030,
        root: ROOT,
        isGateway: (c) => loadsGateway(servicesValue(c as Container)),
      }),
    ];
    for (const expected of [
      /names key AWS_SECRET_KEY, which Secret objectstore-credentials lacks/,
      /AWS_SECRET_ACCESS_KEY is Secret objectstore-credentials key AWS_SECRET_ACCESS_KEY, the object store's is objectstore-credentials key AWS_SECRET_KEY/,
      /telemetry is not turned off/,
    ])
      assert.ok(
        errors.some((e) => expected.test(e)),
        `${expected} not in:\n${errors.join("\n")}`,
      );
  });
});

describe("docker/Dockerfile", () => {
  const dockerfile = readFileSync(path.join(DOCKER, "Dockerfile"), "utf8");
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
    (m[1] ?? "").split(" "),
  );

  test("copies files that exist, all let through by .dockerignore", () => {
    const ignore = readFileSync(path.join(ROOT, ".dockerignore"), "utf8");
    assert.ok(copied.length > 0);
    for (const source of copied) {
      assert.ok(existsSync(path.join(ROOT, source)), `${source} does not exist`);
      assert.ok(
        ignore.split("\n").some((l) => l.replace(/\/$/, "") === `!${source}`),
        `${source} is ignored`,
      );
    }
  });

  test("the code in the image imports only production dependencies", () => {
    const files = spawnSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", ...copied], {
      cwd: ROOT,
      encoding: "utf8",
    })
      .stdout.split("\n")
      .filter((f) => f.endsWith(".ts"));
    assert.ok(files.length > 10);
    for (const file of files) {
      for (const [, spec] of readFileSync(path.join(ROOT, file), "utf8").matchAll(
        /^import [^"]*"([^"]+)"/gm,
      )) {
        if (!spec || spec.startsWith(".") || spec.startsWith("node:")) continue;
        const name = spec.startsWith("@")
          ? spec.split("/").slice(0, 2).join("/")
          : (spec.split("/")[0] as string);
        assert.ok(name in pkg.dependencies, `${file} imports ${name}, which is not a production dependency`);
      }
    }
  });

  test("starts moleculer-runner with the config and the .ts service mask, SERVICES defaulting to all", () => {
    assert.match(
      dockerfile,
      /^ENTRYPOINT \["node", "--max-semi-space-size=32", "node_modules\/moleculer\/bin\/moleculer-runner\.js", "--config", "broker\.config\.ts", "--mask", "\*\*\/\*\.service\.ts"\]$/m,
    );
    const services = /SERVICES=(\S+)/.exec(dockerfile)?.[1] ?? assert.fail("no default SERVICES");
    assert.deepEqual(servicesOf(services), allServiceFiles());
    assert.match(dockerfile, /^USER [1-9]\d*:[1-9]\d*$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n\s+CMD \["node", "docker\/healthcheck\.ts", "live"\]$/m);
  });
});

test("every variable the code reads is in the README's env var table", () => {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  // A row may name several variables (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
  const named = new Set(
    readme
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .flatMap((line) => [...(line.split("|")[1] ?? "").matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1])),
  );
  for (const name of CONFIG_VARIABLES) assert.ok(named.has(name), `${name} missing`);
});
