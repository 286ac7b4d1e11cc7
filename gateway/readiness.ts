/**
 * Readiness: a gateway answers only once the services it fronts are discovered, answer their
 * `ready` action (which pings their store), the access-token keys are loaded, and its own services
 * are announced to the cluster (a chat node that has not heard of this gateway cannot deliver to
 * the sockets it would accept). Until then every routed request gets 503 with Retry-After, never
 * a wrong answer. The result is cached briefly so a busy gateway does not ping on every request.
 */
const CACHE_MS = 1_000;
/** How long a ready state still answers while the probe that renews it runs. */
const STALE_MS = 5_000;

export interface ReadinessChecks {
  services: string[];
  isDiscovered(service: string): boolean;
  ping(service: string): Promise<void>;
  ensureKeys(): Promise<void>;
  /** Whether this node's own services are started and announced to the other nodes. */
  announced(): boolean;
}

export interface ReadinessState {
  ready: boolean;
  checks: Record<string, "ok" | "missing" | "failing">;
}

export class Readiness {
  private readonly checks: ReadinessChecks;
  private last: { at: number; state: ReadinessState } | undefined;
  private running: Promise<ReadinessState> | undefined;

  constructor(checks: ReadinessChecks) {
    this.checks = checks;
  }

  /**
   * The current state, probing when the cached one is older than a second. While known not ready,
   * callers get that answer at once and the probe runs for the ones after: a probe of a store that
   * hangs takes as long as its timeout, and a 503 should not. A ready state up to STALE_MS old is
   * answered at once too, the probe renewing it in the background.
   */
  state(): Promise<ReadinessState> {
    if (this.last && Date.now() - this.last.at < CACHE_MS) return Promise.resolve(this.last.state);
    const running = this.refresh();
    if (this.last && (!this.last.state.ready || this.freshEnough())) return Promise.resolve(this.last.state);
    return running;
  }

  /**
   * Once ready, requests skip the probe until a check fails again. A ready state older than a
   * second still answers at once, for up to STALE_MS, while a probe runs beside: requests (and
   * WebSocket upgrades) never wait for the services' pings, which under load take long enough to
   * hold up every request of that moment.
   */
  isKnownReady(): boolean {
    if (this.last?.state.ready !== true) return false;
    if (Date.now() - this.last.at < CACHE_MS) return true;
    void this.refresh();
    return this.freshEnough();
  }

  private freshEnough(): boolean {
    return this.last !== undefined && Date.now() - this.last.at < STALE_MS;
  }

  private refresh(): Promise<ReadinessState> {
    this.running ??= this.probe().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async probe(): Promise<ReadinessState> {
    const checks: ReadinessState["checks"] = {};
    await Promise.all(
      this.checks.services.map(async (service) => {
        if (!this.checks.isDiscovered(service)) {
          checks[service] = "missing";
          return;
        }
        checks[service] = await this.checks.ping(service).then(
          () => "ok" as const,
          () => "failing" as const,
        );
      }),
    );
    const servicesOk = Object.values(checks).every((c) => c === "ok");
    checks.keys = servicesOk
      ? await this.checks.ensureKeys().then(
          () => "ok" as const,
          () => "failing" as const,
        )
      : "missing";
    checks.gateway = this.checks.announced() ? "ok" : "missing";
    const state = { ready: Object.values(checks).every((c) => c === "ok"), checks };
    this.last = { at: Date.now(), state };
    return state;
  }
}
