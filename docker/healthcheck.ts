/**
 * The container health check of every node role: `node docker/healthcheck.ts live|ready`, run by
 * Docker's HEALTHCHECK and by the Kubernetes exec probes of nodes that have no HTTP port.
 *
 * A gateway (SERVICES names `gateway`) is checked through its own endpoints: `/health/live` and
 * `/health/ready` on PORT. Other nodes serve nothing but `/metrics` on METRICS_PORT, so that is
 * what is probed: an answer at all means the event loop runs (live); ready also needs the
 * broker started and, when TRANSPORTER is set, joined to the bus. Moleculer sets that gauge when
 * the node first connects and leaves it during a NATS outage, while the client reconnects by
 * itself: a restart would not help then, and no Kubernetes Service routes to these nodes anyway.
 * Without metrics (METRICS_ENABLED=false) such a node has no endpoint, so only the running
 * process is known.
 *
 * Exit code 0 is healthy, 1 is not; one line on stdout says why (Docker keeps it in `inspect`).
 */
import { loadConfig } from "../lib/config.ts";
import type { Env } from "../lib/env.ts";

export type Mode = "live" | "ready";

export interface Probe {
  /** http://127.0.0.1:PORT/path, or undefined when the node serves nothing to probe. */
  url: string | undefined;
  /** What a `/metrics` answer must show for the node to count as ready. */
  requiredSeries: string[];
}

const TIMEOUT_MS = 3_000;

/** Whether the node hosts the gateway: SERVICES lists it as a name, folder or file. */
export function hostsGateway(services: string | undefined): boolean {
  return (services ?? "")
    .split(",")
    .map((s) => s.trim().replace(/\/+$/, ""))
    .some((s) => s === "gateway" || s.endsWith("/gateway") || s.endsWith("gateway.service.ts"));
}

export function probeFor(mode: Mode, env: Env): Probe {
  const config = loadConfig(env);
  if (hostsGateway(env.SERVICES)) {
    return { url: `http://127.0.0.1:${config.port}/health/${mode}`, requiredSeries: [] };
  }
  if (!config.metricsEnabled) return { url: undefined, requiredSeries: [] };
  const requiredSeries =
    mode === "ready"
      ? ["moleculer_broker_started", ...(config.transporter ? ["moleculer_transit_ready"] : [])]
      : [];
  return { url: `http://127.0.0.1:${config.metricsPort}/metrics`, requiredSeries };
}

/** The value of the first sample of `name` in a Prometheus text exposition. */
export function sampleValue(exposition: string, name: string): number | undefined {
  const line = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, "m").exec(exposition);
  return line ? Number(line[1]) : undefined;
}

export async function check(mode: Mode, env: Env): Promise<{ healthy: boolean; reason: string }> {
  const probe = probeFor(mode, env);
  if (!probe.url) return { healthy: true, reason: "METRICS_ENABLED=false: only the process is checked" };
  let res: Response;
  try {
    res = await fetch(probe.url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    return { healthy: false, reason: `${probe.url}: ${(err as Error).message}` };
  }
  const body = await res.text();
  if (res.status !== 200)
    return { healthy: false, reason: `${probe.url}: ${res.status} ${body.slice(0, 200)}` };
  for (const name of probe.requiredSeries) {
    const value = sampleValue(body, name);
    if (value !== 1) return { healthy: false, reason: `${name} is ${value ?? "absent"}` };
  }
  return { healthy: true, reason: `${probe.url}: 200` };
}

if (import.meta.main) {
  const mode = process.argv[2] ?? "live";
  if (mode !== "live" && mode !== "ready") {
    process.stdout.write(`usage: node docker/healthcheck.ts live|ready\n`);
    process.exit(2);
  }
  const result = await check(mode, process.env);
  process.stdout.write(`${mode}: ${result.reason}\n`);
  process.exit(result.healthy ? 0 : 1);
}
