/**
 * Offline checks of the Kubernetes manifests in docker/k8s: every document is validated against
 * the API schemas that `kubernetes-models` ships, then the manifests are checked against each
 * other and against the code: selectors, Service ports, HPA and PDB targets, ConfigMap and Secret
 * references, probes on real paths and ports, resources and a non-root security context.
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

interface Container {
  name: string;
  image?: string;
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
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
}

export interface DeploymentView {
  name: string;
  labels: Record<string, string>;
  selector: Record<string, string>;
  podSecurity: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
}

const of = (manifests: Manifest[], kind: string) =>
  manifests.filter((m) => m.doc?.kind === kind).map((m) => m.doc);

export function deployments(manifests: Manifest[]): DeploymentView[] {
  return of(manifests, "Deployment").map((d) => {
    const spec = d.spec as {
      selector?: { matchLabels?: Record<string, string> };
      template?: {
        metadata?: { labels?: Record<string, string> };
        spec?: { securityContext?: DeploymentView["podSecurity"]; containers?: Container[] };
      };
    };
    return {
      name: d.metadata.name,
      labels: spec.template?.metadata?.labels ?? {},
      selector: spec.selector?.matchLabels ?? {},
      podSecurity: spec.template?.spec?.securityContext ?? {},
      containers: spec.template?.spec?.containers ?? [],
    };
  });
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
  const deps = deployments(manifests);

  for (const { file, doc } of manifests) {
    if (doc.kind !== "Namespace" && !namespaces.includes(doc.metadata.namespace ?? ""))
      errors.push(
        `${file} ${doc.kind}/${doc.metadata.name}: namespace "${doc.metadata.namespace}" is not declared`,
      );
  }

  for (const d of deps) {
    const where = `Deployment/${d.name}`;
    if (!matches(d.selector, d.labels)) errors.push(`${where}: selector does not match the pod labels`);
    if (d.podSecurity.runAsNonRoot !== true)
      errors.push(`${where}: pod securityContext.runAsNonRoot is not true`);
    if (!d.podSecurity.runAsUser)
      errors.push(`${where}: pod securityContext.runAsUser is not a non-zero uid`);
    if (d.containers.length === 0) errors.push(`${where}: no containers`);
    for (const c of d.containers) errors.push(...containerErrors(`${where} ${c.name}`, c, endpoints));
    for (const c of d.containers) {
      for (const ref of c.envFrom ?? []) {
        if (ref.configMapRef && !configMaps.has(ref.configMapRef.name))
          errors.push(`${where}: ConfigMap ${ref.configMapRef.name} is not declared`);
        if (ref.secretRef && !secrets.has(ref.secretRef.name))
          errors.push(`${where}: Secret ${ref.secretRef.name} is not declared`);
      }
    }
  }

  for (const s of of(manifests, "Service")) {
    const spec = s.spec as { selector?: Record<string, string>; ports?: { targetPort?: string | number }[] };
    const targets = deps.filter((d) => matches(spec.selector ?? {}, d.labels));
    if (targets.length === 0) {
      errors.push(`Service/${s.metadata.name}: selects no Deployment's pods`);
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
