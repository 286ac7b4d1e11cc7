/**
 * Admission control for password hashing, the one costly step of register, login and the other
 * password routes. A node runs at most `slots` hashes at once (HASH_CONCURRENCY, sized from libuv's
 * thread pool, where argon2 runs, and the cores: see lib/config.ts) and lets the others wait in a FIFO line, but
 * only while the wait it can foresee stays within `maxWaitMs`. A request that would wait longer is
 * refused at once with 503 and Retry-After, and counted, instead of queueing for seconds: under
 * overload the accepted requests keep their latency and the excess learns at once to come back.
 *
 * The foreseen wait of a newcomer is (waiting + 1) × hashMs / slots, where hashMs is a moving
 * average of how long the node's hashes take (seeded by one hash timed at start). A line longer
 * than `maxQueue` is refused too, whatever the average says.
 *
 * Why not Moleculer's bulkhead, which the hashing actions had before: it bounds the line by a
 * count alone, and a count that is right for one machine's hash time is seconds of waiting on a
 * slower one; its limit is per action, so register and login each had their own slots and the
 * node ran twice the hashes its cores could. This gate is shared by every hashing call of the node.
 */
import { ServiceUnavailableError } from "../../lib/errors.ts";

export interface HashAdmissionOptions {
  /** Hashes run at once. */
  slots: number;
  /** The longest wait a request is admitted to. */
  maxWaitMs: number;
  /** The longest line, whatever the foreseen wait. */
  maxQueue: number;
  /** The hash time assumed until one is measured. */
  initialHashMs: number;
  /** Called for each refusal (a metric). */
  onShed?: () => void;
  /** Called when the line's length changes (a metric). */
  onQueue?: (waiting: number) => void;
  now?: () => number;
}

/** The error of a refused hash: 503 with Retry-After; not a failure of the node (no circuit breaking). */
export class HashingBusyError extends ServiceUnavailableError {
  constructor(retryAfterS: number) {
    super("Too many password checks at once; try again shortly", "HASHING_BUSY");
    this.data = { retryAfter: retryAfterS };
  }
}

const EWMA_WEIGHT = 0.2;

export class HashAdmission {
  private readonly options: Required<Omit<HashAdmissionOptions, "onShed" | "onQueue">> &
    Pick<HashAdmissionOptions, "onShed" | "onQueue">;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private hashMs: number;

  constructor(options: HashAdmissionOptions) {
    if (!(options.slots >= 1)) throw new RangeError("slots must be at least 1");
    this.options = { now: () => performance.now(), ...options };
    this.hashMs = options.initialHashMs;
  }

  /** Hashes running now. */
  get inFlight(): number {
    return this.running;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** The moving average of a hash's duration (ms). */
  get averageHashMs(): number {
    return this.hashMs;
  }

  /** The wait a request arriving now would have, by the moving average. */
  foreseenWaitMs(): number {
    if (this.running < this.options.slots) return 0;
    return ((this.waiting.length + 1) * this.hashMs) / this.options.slots;
  }

  /** Runs task in a slot, after a bounded wait; throws HashingBusyError at once when the wait would be longer. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.slots) {
      if (this.waiting.length >= this.options.maxQueue || this.foreseenWaitMs() > this.options.maxWaitMs) {
        this.options.onShed?.();
        throw new HashingBusyError(this.retryAfterS());
      }
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.options.onQueue?.(this.waiting.length);
      });
      this.options.onQueue?.(this.waiting.length);
    } else {
      this.running += 1;
    }
    const started = this.options.now();
    try {
      return await task();
    } finally {
      const took = this.options.now() - started;
      this.hashMs += EWMA_WEIGHT * (took - this.hashMs);
      this.release();
    }
  }

  /** Measures one hash to seed the average (the first ones of a node would otherwise guess). */
  async calibrate(task: () => Promise<unknown>): Promise<void> {
    const started = this.options.now();
    await task();
    this.hashMs = this.options.now() - started;
  }

  private release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next in line, so `running` stays as it is.
    if (next) next();
    else this.running -= 1;
  }

  /** Seconds until the line now waiting would be through, at least 1. */
  private retryAfterS(): number {
    const drainMs = ((this.waiting.length + this.running) * this.hashMs) / this.options.slots;
    return Math.max(1, Math.ceil(drainMs / 1000));
  }
}
