/**
 * Traffic for resilience tests: a few workers send requests in a loop while a fault is injected,
 * and every outcome is counted as the client saw it (an HTTP status, or `network` when no answer
 * came), with its latency and the time it was sent, so a test can tell what happened before,
 * during and after the fault and how long recovery took.
 */
import type { ApiResponse } from "../../client/rest-client.ts";

export interface Outcome {
  /** The status; 0 when the request got no HTTP answer at all, -1 when none came within hangMs. */
  status: number;
  /** ms since the tally was created, when the request was sent. */
  at: number;
  ms: number;
}

export class Tally {
  readonly name: string;
  readonly outcomes: Outcome[] = [];
  readonly t0 = Date.now();
  /** A request unanswered after this long counts as hung (-1) and its worker moves on. */
  readonly hangMs: number;

  constructor(name: string, hangMs = 60_000) {
    this.name = name;
    this.hangMs = hangMs;
  }

  now(): number {
    return Date.now() - this.t0;
  }

  /** Runs one request and records what came of it; resolves its status (0: no answer). */
  async run(send: () => Promise<ApiResponse<unknown> | number>): Promise<number> {
    const at = this.now();
    let status: number;
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<number>((resolve) => {
      timer = setTimeout(() => resolve(-1), this.hangMs);
    });
    try {
      const answered = send().then((res) => (typeof res === "number" ? res : res.status));
      status = await Promise.race([answered, hung]);
    } catch {
      status = 0;
    } finally {
      clearTimeout(timer);
    }
    this.outcomes.push({ status, at, ms: this.now() - at });
    return status;
  }

  /** Outcomes of requests sent in [from, to) ms. */
  between(from: number, to = Number.POSITIVE_INFINITY): Outcome[] {
    return this.outcomes.filter((o) => o.at >= from && o.at < to);
  }

  statuses(outcomes: Outcome[] = this.outcomes): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const o of outcomes) {
      const key = o.status === 0 ? "network" : o.status === -1 ? "hung" : String(o.status);
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  slowestMs(outcomes: Outcome[] = this.outcomes): number {
    return outcomes.reduce((max, o) => Math.max(max, o.ms), 0);
  }

  /** Send time of the first success after `from` that is followed only by successes. */
  recoveredAt(from: number, ok = (s: number) => s >= 200 && s < 300): number | undefined {
    const after = this.between(from).sort((a, b) => a.at - b.at);
    let last = -1;
    for (let i = 0; i < after.length; i++) if (!ok((after[i] as Outcome).status)) last = i;
    return after[last + 1]?.at;
  }

  /** One line for the test log and docs/resilience.md. */
  summary(outcomes: Outcome[] = this.outcomes, label = "all"): string {
    const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0;
    return (
      `${this.name} [${label}]: ${outcomes.length} requests ${JSON.stringify(this.statuses(outcomes))}` +
      ` latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${this.slowestMs(outcomes)} ms`
    );
  }
}

/** Runs `workers` loops of `step` until `stop()` is called; resolves once all have finished. */
export function loop(
  workers: number,
  step: (worker: number, i: number) => Promise<unknown>,
  pauseMs = 20,
): { stop(): Promise<void> } {
  let running = true;
  const done = Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; running; i++) {
        await step(w, i);
        if (pauseMs > 0) await sleep(pauseMs);
      }
    }),
  );
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it resolves true; resolves the ms it took, or throws after timeoutMs. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await Promise.resolve(probe()).catch(() => false)) return Date.now() - start;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

/** Prints a line the resilience report quotes. */
export function report(line: string): void {
  process.stdout.write(`resilience: ${line}\n`);
}
