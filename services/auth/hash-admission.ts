/**
 * Admission control for password hashing, the one costly step of register, login and the other
 * password routes. A node runs at most `slots` hashes at once (HASH_CONCURRENCY, sized from libuv's
 * thread pool, where argon2 runs, and the cores: see lib/config.ts) and lets the others wait in a FIFO line, but
 * only while the wait it can foresee stays within `maxWaitMs`. A request that would wait longer is
 * refused at once with 503 and Retry-After, and counted, instead of queueing for seconds: under
 * overload the accepted requests keep their latency and the excess learns at once to come back.
 *
 * The foreseen wait of a newcomer is (waiting + 1) × hashMs / slots, where hashMs is the shortest
 * of the node's last 32 hash durations (seeded by one hash timed at start): the hash's own time.
 * A longer duration is the hash waiting for a core or for the event loop to take its result, and
 * an average would count that backlog in: under a burst it would grow, shorten the line, turn more
 * requests away, and each refusal (an answer to make, a client that sends again) would add to the
 * backlog it measures. A line longer than `maxQueue` is refused too, whatever the estimate says.
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

/** Durations the estimate is the shortest of. */
const WINDOW = 32;

export class HashAdmission {
  private readonly options: Required<Omit<HashAdmissionOptions, "onShed" | "onQueue">> &
    Pick<HashAdmissionOptions, "onShed" | "onQueue">;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private hashMs: number;
  /** The last WINDOW durations, a ring. */
  private readonly durations: number[] = [];
  private next = 0;

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

  /** The estimate of a hash's own time (ms): the shortest recent duration. */
  get hashTimeMs(): number {
    return this.hashMs;
  }

  /** The wait a request arriving now would have, by the estimate of the hash time. */
  foreseenWaitMs(): number {
    if (this.running < this.options.slots) return 0;
    return ((this.waiting.length + 1) * this.hashMs) / this.options.slots;
  }

  /**
   * Throws HashingBusyError (counted) when a hash asked for now would be refused. A route calls it
   * before the work that leads to its hash (rate limits, the account's lookup), so a request that
   * is going to be refused costs no store or Redis call; run() decides again when the hash is due.
   */
  check(): void {
    if (this.wouldShed()) {
      this.options.onShed?.();
      throw new HashingBusyError(this.retryAfterS());
    }
  }

  /** Runs task in a slot, after a bounded wait; throws HashingBusyError at once when the wait would be longer. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.slots) {
      if (this.wouldShed()) {
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
      this.record(took);
      this.release();
    }
  }

  /** Measures one hash to seed the estimate (the first ones of a node would otherwise guess). */
  async calibrate(task: () => Promise<unknown>): Promise<void> {
    const started = this.options.now();
    await task();
    this.record(this.options.now() - started);
  }

  private record(ms: number): void {
    this.durations[this.next] = ms;
    this.next = (this.next + 1) % WINDOW;
    this.hashMs = Math.min(...this.durations);
  }

  private wouldShed(): boolean {
    if (this.running < this.options.slots) return false;
    return this.waiting.length >= this.options.maxQueue || this.foreseenWaitMs() > this.options.maxWaitMs;
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
