/** A token bucket: `points` per `duration` seconds, refilled continuously. */
export class TokenBucket {
  private readonly capacity: number;
  private readonly perMs: number;
  private tokens: number;
  private last: number;

  constructor(points: number, durationS: number, now = Date.now()) {
    this.capacity = points;
    this.perMs = points / (durationS * 1000);
    this.tokens = points;
    this.last = now;
  }

  /** Takes one token; resolves false when none is left. */
  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
