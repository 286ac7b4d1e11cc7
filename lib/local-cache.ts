/**
 * A node's in-process copy of records that other nodes can change: an LRU with a lifetime, whose
 * entries are dropped when the node hears of a change (a broadcast). A value read before a drop is
 * not kept after it: take `mark()` before reading and give it to `set()`, so a drop that overtakes
 * a slow read cannot leave the old value behind. A lifetime of 0 keeps nothing.
 */
import { LRUCache } from "lru-cache";

export class LocalCache<V extends object> {
  readonly #entries: LRUCache<string, V> | undefined;
  /** Bumped by every drop. */
  #drops = 0;

  constructor(options: { ttlMs: number; max: number }) {
    this.#entries = options.ttlMs > 0 ? new LRUCache({ max: options.max, ttl: options.ttlMs }) : undefined;
  }

  get enabled(): boolean {
    return this.#entries !== undefined;
  }

  get(key: string): V | undefined {
    return this.#entries?.get(key);
  }

  /** Where the drops stand before a read whose result may be kept. */
  mark(): number {
    return this.#drops;
  }

  /** Whether nothing was dropped since `mark`. */
  unchanged(mark: number): boolean {
    return mark === this.#drops;
  }

  /** Keeps a value read after `mark`, unless something was dropped meanwhile. */
  set(key: string, value: V, mark: number): void {
    if (this.unchanged(mark)) this.#entries?.set(key, value);
  }

  drop(keys: Iterable<string>): void {
    this.#drops += 1;
    for (const key of keys) this.#entries?.delete(key);
  }
}
