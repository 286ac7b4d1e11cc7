/**
 * Offline checks of the Kubernetes manifests in docker/k8s: every document is validated against
 * the API schemas that `kubernetes-models` ships, then the manifests are checked against each
 * other and against the code: selectors, Service ports, HPA and PDB targets, ConfigMap and Secret
 * references, probes on real paths and ports, resources and a non-root security context, for the
 * platform's Deployments and for the object store's StatefulSet, and that S3_ENDPOINT names that
 * object store and gives its key pair to the nodes that open the file store.
 *
 * The schemas reject wrong types and missing required fields but not unknown ones (a misspelt
 * `readinessProbes` passes them), so the checks below look for the fields that matter by name.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

export interface Manifest {
  file: string;
  doc: K8sObject;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** Every document of every .yaml file in dir, in file order; a YAML error throws. */
export function loadManifests(dir: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const name of readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    manifests.push(...parseManifests(readFileSync(path.join(dir, name), "utf8"), name));
  }
  return manifests;
}

export function parseManifests(text: string, file: string): Manifest[] {
  return parseAllDocuments(text).map((document, i) => {
    if (document.errors.length) throw new Error(`${file} document ${i + 1}: ${document.errors[0]?.message}`);
    return { file, doc: document.toJS() as K8sObject };
  });
}

/** Schema errors of each document, as "file Kind/name: message"; empty when all are valid. */
export async function schemaErrors(manifests: Manifest[]): Promise<string[]> {
  const errors: string[] = [];
  for (const { file, doc } of manifests) {
    const where = `${file} ${doc?.kind}/${doc?.metadata?.name}`;
    if (typeof doc?.apiVersion !== "string" || typeof doc.kind !== "string") {
      errors.push(`${where}: apiVersion and kind are required`);
      continue;
    }
    const group = doc.apiVersion.includes("/") ? doc.apiVersion : `v1`;
    let model: (new (data: unknown) => { validate(): void }) | undefined;
    try {
      const module = (await import(`kubernetes-models/${group}`)) as Record<string, unknown>;
      model = module[doc.kind] as typeof model;
    } catch {
      model = undefined;
    }
    if (!model) {
      errors.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new model(doc).validate();
    } catch (err) {
      errors.push(`${where}: ${(err as Error).message}`);
    }
  }
  return errors;
}

interface Probe {
  httpGet?: { path?: string; port?: string | number };
  exec?: { command?: string[] };
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath?: string };
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}

export interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
  };
  volumeMounts?: { name: string; mountPath: string }[];
}

export interface WorkloadView {
  kind: "Deployment" | "StatefulSet";
  name: string;
  namespace: string | undefined;
  labels: Record<string, string>;
  selector: Record<string, string>;
  podSecurity: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  /** Names of the pod's volumes and (StatefulSet) volume claim templates. */
  volumes: string[];
  /** Names of the volume claim templates (StatefulSet). */
  claims: string[];
  /** The governing Service of a StatefulSet. */
  serviceName?: string;
}

const of = (manifests: Manifest[], kind: string) =>
  manifests.filter((m) => m.doc?.kind === kind).map((m) => m.doc);

/** The Deployments and StatefulSets, in file order. */
export function workloads(manifests: Manifest[]): WorkloadView[] {
  return manifests
    .map((m) => m.doc)
    .filter((d) => d?.kind === "Deployment" || d?.kind === "StatefulSet")
    .map((d): WorkloadView => {
      const spec = d.spec as {
        serviceName?: string;
        selector?: { matchLabels?: Record<string, string> };
        volumeClaimTemplates?: { metadata?: { name?: string } }[];
        template?: {
          metadata?: { labels?: Record<string, string> };
          spec?: {
            securityContext?: WorkloadView["podSecurity"];
            containers?: Container[];
            volumes?: { name: string }[];
          };
        };
      };
      const claims = (spec.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? "");
      return {
        kind: d.kind as WorkloadView["kind"],
        name: d.metadata.name,
        namespace: d.metadata.namespace,
        labels: spec.template?.metadata?.labels ?? {},
        selector: spec.selector?.matchLabels ?? {},
        podSecurity: spec.template?.spec?.securityContext ?? {},
        containers: spec.template?.spec?.containers ?? [],
        volumes: [...(spec.template?.spec?.volumes ?? []).map((v) => v.name), ...claims],
        claims,
        ...(d.kind === "StatefulSet" ? { serviceName: spec.serviceName } : {}),
      };
    });
}

export function deployments(manifests: Manifest[]): WorkloadView[] {
  return workloads(manifests).filter((w) => w.kind === "Deployment");
}

/** A platform node (the image's runner) is told what to host by SERVICES; anything else is not one. */
export const isPlatformContainer = (c: Container) => (c.env ?? []).some((e) => e.name === "SERVICES");

interface EnvSource {
  kind: "ConfigMap" | "Secret";
  name: string;
  namespace: string | undefined;
  data: Record<string, string>;
}

function envSources(manifests: Manifest[]): EnvSource[] {
  return manifests
    .map((m) => m.doc)
    .filter((d) => d?.kind === "ConfigMap" || d?.kind === "Secret")
    .map((d) => ({
      kind: d.kind as EnvSource["kind"],
      name: d.metadata.name,
      namespace: d.metadata.namespace,
      data: {
        ...(d.data as Record<string, string> | undefined),
        ...(d.stringData as Record<string, string> | undefined),
      },
    }));
}

/**
 * The env a container starts with: its envFrom ConfigMaps and Secrets in order, then its own
 * `env` (plain values, and keys of ConfigMaps and Secrets); fieldRefs are left out. `secrets`
 * says which Secret each variable came from.
 */
export function containerEnv(
  manifests: Manifest[],
  c: Container,
): { env: Record<string, string>; secrets: Record<string, { name: string; key: string }> } {
  const sources = envSources(manifests);
  const find = (kind: EnvSource["kind"], name: string) =>
    sources.find((s) => s.kind === kind && s.name === name);
  const env: Record<string, string> = {};
  const secrets: Record<string, { name: string; key: string }> = {};
  for (const ref of c.envFrom ?? []) {
    const source = ref.configMapRef
      ? find("ConfigMap", ref.configMapRef.name)
      : ref.secretRef
        ? find("Secret", ref.secretRef.name)
        : undefined;
    for (const [key, value] of Object.entries(source?.data ?? {})) {
      env[key] = value;
      if (source?.kind === "Secret") secrets[key] = { name: source.name, key };
      else delete secrets[key];
    }
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = e.value;
      delete secrets[e.name];
    }
    const keyRef = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
    if (keyRef) {
      const kind = e.valueFrom?.secretKeyRef ? "Secret" : "ConfigMap";
      const value = find(kind, keyRef.name)?.data[keyRef.key];
      if (value !== undefined) env[e.name] = value;
      if (kind === "Secret") secrets[e.name] = { name: keyRef.name, key: keyRef.key };
      else delete secrets[e.name];
    }
  }
  return { env, secrets };
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The paths each kind of node serves on its ports, given the env the pods get. */
export interface NodeEndpoints {
  port: number;
  metricsPort: number;
  /** Whether the container's SERVICES includes the gateway. */
  isGateway(container: Container): boolean;
  /** Files that exec probes may run, relative to the repository root. */
  root: string;
}

/** Cross-object and code checks; returns one message per problem. */
export function referenceErrors(manifests: Manifest[], endpoints: NodeEndpoints): string[] {
  const errors: string[] = [];
  const namespaces = of(manifests, "Namespace").map((n) => n.metadata.name);
  const configMaps = new Set(of(manifests, "ConfigMap").map((c) => c.metadata.name));
  const secrets = new Set(of(manifests, "Secret").map((s) => s.metadata.name));
  const services = new Set(of(manifests, "Service").map((s) => s.metadata.name));
  const sources = envSources(manifests);
  const all = workloads(manifests);
  const deps = all.filter((w) => w.kind === "Deployment");

  for (const { file, doc } of manifests) {
    if (doc.kind !== "Namespace" && !namespaces.includes(doc.metadata.namespace ?? ""))
      errors.push(
        `${file} ${doc.kind}/${doc.metadata.name}: namespace "${doc.metadata.namespace}" is not declared`,
      );
  }

  for (const d of all) {
    const where = `${d.kind}/${d.name}`;
    if (!matches(d.selector, d.labels)) errors.push(`${where}: selector does not match the pod labels`);
    if (d.podSecurity.runAsNonRoot !== true)
      errors.push(`${where}: pod securityContext.runAsNonRoot is not true`);
    if (!d.podSecurity.runAsUser)
      errors.push(`${where}: pod securityContext.runAsUser is not a non-zero uid`);
    if (d.containers.length === 0) errors.push(`${where}: no containers`);
    if (d.kind === "StatefulSet" && !services.has(d.serviceName ?? ""))
      errors.push(`${where}: serviceName "${d.serviceName}" is no declared Service`);
    for (const c of d.containers) {
      errors.push(
        ...(isPlatformContainer(c)
          ? containerErrors(`${where} ${c.name}`, c, endpoints)
          : otherContainerErrors(`${where} ${c.name}`, c)),
      );
      for (const m of c.volumeMounts ?? []) {
        if (!d.volumes.includes(m.name))
          errors.push(`${where} ${c.name}: volumeMount ${m.name} is no volume or claim template`);
      }
    }
    for (const c of d.containers) {
      for (const ref of c.envFrom ?? []) {
        if (ref.configMapRef && !configMaps.has(ref.configMapRef.name))
          errors.push(`${where}: ConfigMap ${ref.configMapRef.name} is not declared`);
        if (ref.secretRef && !secrets.has(ref.secretRef.name))
          errors.push(`${where}: Secret ${ref.secretRef.name} is not declared`);
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
        if (!ref) continue;
        const kind = e.valueFrom?.secretKeyRef ? "Secret" : "ConfigMap";
        const source = sources.find((s) => s.kind === kind && s.name === ref.name);
        if (!source) errors.push(`${where}: ${e.name} names ${kind} ${ref.name}, which is not declared`);
        else if (!(ref.key in source.data))
          errors.push(`${where}: ${e.name} names key ${ref.key}, which ${kind} ${ref.name} lacks`);
      }
    }
  }

  for (const s of of(manifests, "Service")) {
    const spec = s.spec as { selector?: Record<string, string>; ports?: { targetPort?: string | number }[] };
    const targets = all.filter((d) => matches(spec.selector ?? {}, d.labels));
    if (targets.length === 0) {
      errors.push(`Service/${s.metadata.name}: selects no Deployment's or StatefulSet's pods`);
      continue;
    }
    for (const p of spec.ports ?? []) {
      const served = targets.every((d) =>
        d.containers.some((c) =>
          c.ports?.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort),
        ),
      );
      if (!served) errors.push(`Service/${s.metadata.name}: targetPort ${p.targetPort} is no container port`);
    }
  }

  for (const h of of(manifests, "HorizontalPodAutoscaler")) {
    const spec = h.spec as {
      scaleTargetRef?: { kind?: string; name?: string };
      minReplicas?: number;
      maxReplicas?: number;
    };
    const ref = spec.scaleTargetRef;
    if (ref?.kind !== "Deployment" || !deps.some((d) => d.name === ref.name))
      errors.push(`HorizontalPodAutoscaler/${h.metadata.name}: targets no declared Deployment`);
    if ((spec.minReplicas ?? 1) < 2)
      errors.push(`HorizontalPodAutoscaler/${h.metadata.name}: minReplicas below 2`);
  }
  for (const d of deps) {
    if (
      !of(manifests, "HorizontalPodAutoscaler").some(
        (h) => (h.spec as { scaleTargetRef?: { name?: string } }).scaleTargetRef?.name === d.name,
      )
    )
      errors.push(`Deployment/${d.name}: no HorizontalPodAutoscaler`);
    const pdb = of(manifests, "PodDisruptionBudget").some((p) =>
      matches(
        (p.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {},
        d.labels,
      ),
    );
    if (!pdb) errors.push(`Deployment/${d.name}: no PodDisruptionBudget selects its pods`);
  }
  return errors;
}

function containerErrors(where: string, c: Container, endpoints: NodeEndpoints): string[] {
  const errors: string[] = [];
  const gateway = endpoints.isGateway(c);
  const portOf = (ref: string | number | undefined) =>
    typeof ref === "number" ? ref : c.ports?.find((p) => p.name === ref)?.containerPort;
  const allowed = new Map<number, string[]>([[endpoints.metricsPort, ["/metrics"]]]);
  if (gateway) allowed.set(endpoints.port, ["/health/live", "/health/ready"]);

  const check = (kind: "livenessProbe" | "readinessProbe" | "startupProbe", required: boolean) => {
    const probe = c[kind];
    if (!probe) {
      if (required) errors.push(`${where}: no ${kind}`);
      return;
    }
    if (probe.httpGet) {
      const port = portOf(probe.httpGet.port);
      if (port === undefined)
        errors.push(`${where}: ${kind} port ${probe.httpGet.port} is no container port`);
      else if (!allowed.get(port)?.includes(probe.httpGet.path ?? ""))
        errors.push(`${where}: ${kind} ${probe.httpGet.path} is not served on port ${port}`);
      if (kind === "readinessProbe" && gateway && probe.httpGet.path !== "/health/ready")
        errors.push(`${where}: a gateway's readinessProbe must be /health/ready`);
      if (kind === "livenessProbe" && gateway && probe.httpGet.path !== "/health/live")
        errors.push(`${where}: a gateway's livenessProbe must be /health/live`);
    } else if (probe.exec) {
      const [cmd, script, mode] = probe.exec.command ?? [];
      const scriptPath = path.join(endpoints.root, script ?? "");
      if (cmd !== "node" || !script || !existsSync(scriptPath) || !["live", "ready"].includes(mode ?? ""))
        errors.push(`${where}: ${kind} exec must be node <existing script> live|ready`);
    } else {
      errors.push(`${where}: ${kind} is neither httpGet nor exec`);
    }
  };
  check("livenessProbe", true);
  check("readinessProbe", true);
  check("startupProbe", false);

  for (const port of [endpoints.metricsPort, ...(gateway ? [endpoints.port] : [])]) {
    if (!c.ports?.some((p) => p.containerPort === port))
      errors.push(`${where}: port ${port} is not declared`);
  }
  if (!c.resources?.requests?.cpu || !c.resources.requests.memory)
    errors.push(`${where}: no cpu and memory requests`);
  if (!c.resources?.limits?.memory) errors.push(`${where}: no memory limit`);
  if (c.securityContext?.allowPrivilegeEscalation !== false)
    errors.push(`${where}: securityContext.allowPrivilegeEscalation is not false`);
  return errors;
}

/** A container that is not a platform node (the object store): probes on its own ports, limits. */
function otherContainerErrors(where: string, c: Container): string[] {
  const errors: string[] = [];
  for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"] as const) {
    const probe = c[kind];
    if (!probe) {
      if (kind !== "startupProbe") errors.push(`${where}: no ${kind}`);
      continue;
    }
    if (probe.httpGet) {
      const ref = probe.httpGet.port;
      if (!c.ports?.some((p) => p.name === ref || p.containerPort === ref))
        errors.push(`${where}: ${kind} port ${ref} is no container port`);
    } else if (!probe.exec?.command?.length) {
      errors.push(`${where}: ${kind} is neither httpGet nor exec`);
    }
  }
  if (!c.image || !/:[^:/]+$/.test(c.image) || c.image.endsWith(":latest"))
    errors.push(`${where}: image ${c.image} is not pinned to a version tag`);
  if (!c.resources?.requests?.cpu || !c.resources.requests.memory)
    errors.push(`${where}: no cpu and memory requests`);
  if (!c.resources?.limits?.memory) errors.push(`${where}: no memory limit`);
  if (c.securityContext?.allowPrivilegeEscalation !== false)
    errors.push(`${where}: securityContext.allowPrivilegeEscalation is not false`);
  return errors;
}

/** The S3 key pair: only the nodes that open the file store should hold it. */
export const S3_KEY_PAIR = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] as const;

/** What the object-store check needs to know of the code. */
export interface FileStoreNodes {
  /** Whether a platform container (its SERVICES) opens the file store. */
  opensFileStore(container: Container): boolean;
  /** The store the container's env selects (loadConfig's files.store). */
  storeOf(env: Record<string, string>): "disk" | "s3";
}

/**
 * The object store and its wiring: every platform node selects the s3 store; S3_ENDPOINT is
 * `http://<service>[.<namespace>[.svc[.cluster.local]]]:<port>` of a declared Service whose port
 * reaches a container port of a StatefulSet with a volume claim template mounted; that container
 * takes AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the same Secret keys as every node that
 * opens the file store, and nodes that do not open it get no key pair.
 */
export function objectStoreErrors(manifests: Manifest[], nodes: FileStoreNodes): string[] {
  const errors: string[] = [];
  const all = workloads(manifests);
  const services = of(manifests, "Service");
  const stores = new Map<string, { workload: WorkloadView; container: Container }>();

  for (const w of all) {
    for (const c of w.containers.filter(isPlatformContainer)) {
      const where = `${w.kind}/${w.name} ${c.name}`;
      const { env, secrets } = containerEnv(manifests, c);
      if (nodes.storeOf(env) !== "s3") {
        errors.push(`${where}: FILE_STORE is not s3`);
        continue;
      }
      const opens = nodes.opensFileStore(c);
      for (const name of S3_KEY_PAIR) {
        if (opens && !secrets[name]) errors.push(`${where}: ${name} does not come from a Secret`);
        if (!opens && name in env) errors.push(`${where}: has ${name} but opens no file store`);
      }
      if (!opens) continue;
      let url: URL;
      try {
        url = new URL(env.S3_ENDPOINT ?? "");
      } catch {
        errors.push(`${where}: S3_ENDPOINT "${env.S3_ENDPOINT}" is no URL`);
        continue;
      }
      const [serviceName, namespace = w.namespace, ...rest] = url.hostname.split(".");
      const suffix = rest.join(".");
      if (!["", "svc", "svc.cluster.local"].includes(suffix)) {
        errors.push(`${where}: S3_ENDPOINT host ${url.hostname} is no Service of this cluster`);
        continue;
      }
      const service = services.find(
        (s) => s.metadata.name === serviceName && s.metadata.namespace === namespace,
      );
      if (!service) {
        errors.push(`${where}: S3_ENDPOINT names Service ${namespace}/${serviceName}, which is not declared`);
        continue;
      }
      const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
      const spec = service.spec as {
        selector?: Record<string, string>;
        ports?: { port: number; targetPort?: string | number }[];
      };
      const servicePort = spec.ports?.find((p) => p.port === port);
      if (!servicePort) {
        errors.push(`${where}: Service/${serviceName} has no port ${port}`);
        continue;
      }
      const target = servicePort.targetPort ?? port;
      const found = all
        .filter((s) => s.kind === "StatefulSet" && matches(spec.selector ?? {}, s.labels))
        .flatMap((s) =>
          s.containers
            .filter((sc) => sc.ports?.some((p) => p.name === target || p.containerPort === target))
            .map((container) => ({ workload: s, container })),
        );
      const store = found[0];
      if (!store) {
        errors.push(`${where}: Service/${serviceName} port ${port} reaches no StatefulSet container`);
        continue;
      }
      stores.set(`${store.workload.name}/${store.container.name}`, store);
      const storeSecrets = containerEnv(manifests, store.container).secrets;
      for (const name of S3_KEY_PAIR) {
        const mine = secrets[name];
        const theirs = storeSecrets[name];
        if (mine && (theirs?.name !== mine.name || theirs.key !== mine.key))
          errors.push(
            `${where}: ${name} is Secret ${mine.name} key ${mine.key}, the object store's is ${theirs ? `${theirs.name} key ${theirs.key}` : "unset"}`,
          );
      }
    }
  }
  if (stores.size === 0) errors.push("no platform node reaches an object store");
  for (const { workload, container } of stores.values()) {
    const where = `StatefulSet/${workload.name} ${container.name}`;
    if (!container.volumeMounts?.some((m) => workload.claims.includes(m.name)))
      errors.push(`${where}: keeps its data on no volume claim template`);
    const args = [...(container.command ?? []), ...(container.args ?? [])];
    if (/seaweedfs/.test(container.image ?? "") && !args.includes("-master.telemetry=false"))
      errors.push(`${where}: SeaweedFS telemetry is not turned off (-master.telemetry=false)`);
  }
  return errors;
}
