/**
 * Two small async helpers shared by the tools around the platform (scripts/seed.ts, bench/,
 * artillery/), which had each written their own: a bounded worker pool, and a promise raced
 * against a timer.
 */

/**
 * Runs `task` over `items` with at most `limit` in flight, in order of start. A failure stops
 * the workers from starting more and is thrown once those in flight have settled (the first one).
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        await task(items[index] as T, index);
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}

/** `promise`, or a rejection `<what> took over <ms / 1000> s` when it has not settled by then. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
