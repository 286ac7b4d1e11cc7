/**
 * A small typed env-var parser. Each reader returns the parsed value or throws a ConfigError that
 * names the variable, so a bad setting stops the node at start with a message an operator can act on.
 */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

export type Env = Record<string, string | undefined>;

function checkUrl(name: string, value: string, protocols: readonly string[]): void {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, `expected a URL, got "${value}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(" or ")} URL, got "${parsed.protocol}"`);
  }
  if (parsed.hostname === "") throw new ConfigError(name, `expected a host in "${value}"`);
}

export class EnvReader {
  readonly env: Env;
  /** Every variable read, so tests can check the docs and deployment files name them all. */
  readonly read = new Set<string>();

  constructor(env: Env) {
    this.env = env;
  }

  private raw(name: string): string | undefined {
    this.read.add(name);
    const value = this.env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value)) throw new ConfigError(name, `expected an integer, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max)
      throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new ConfigError(name, `expected a number from ${min} to ${max}, got "${value}"`);
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(value)) return true;
    if (/^(0|false|no|off)$/i.test(value)) return false;
    throw new ConfigError(name, `expected true or false, got "${value}"`);
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ConfigError(name, `expected one of ${allowed.join(", ")}, got "${value}"`);
    }
    return value as T;
  }

  list(name: string): string[] {
    const value = this.raw(name);
    return value === undefined
      ? []
      : value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    checkUrl(name, value, protocols);
    return value;
  }

  /** Comma-separated URLs, such as the servers of a NATS cluster; kept as written. */
  urlList(name: string, protocols: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    for (const url of value.split(",")) checkUrl(name, url.trim(), protocols);
    return value;
  }

  /**
   * Comma-separated server addresses, each `host:port` or a URL of one of the protocols (such as
   * the seed nodes of a Redis Cluster); kept as written, trimmed. Unset or empty: none.
   */
  hostPortList(name: string, protocols: readonly string[]): string[] {
    const value = this.raw(name);
    if (value === undefined) return [];
    const entries = value.split(",").map((s) => s.trim());
    for (const entry of entries) {
      if (entry.includes("://")) checkUrl(name, entry, protocols);
      else if (!/^[^\s:/]+:\d{1,5}$/.test(entry) || Number(entry.slice(entry.lastIndexOf(":") + 1)) > 65535)
        throw new ConfigError(name, `expected host:port or a ${protocols.join(" or ")} URL, got "${entry}"`);
    }
    return entries;
  }

  /**
   * A URL whose authority may list several hosts, as a MongoDB seed list does
   * (`mongodb://user:pass@a:27017,b:27017/db?replicaSet=rs0`); each host is checked.
   */
  multiHostUrl(name: string, protocols: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const match = /^([a-z][a-z0-9+.-]*:)\/\/((?:[^@/?#]*@)?)([^/?#]*)(.*)$/i.exec(value);
    const hosts = match?.[3]?.split(",") ?? [];
    if (!match || hosts.some((host) => host === "")) {
      throw new ConfigError(name, `expected a URL, got "${value}"`);
    }
    for (const host of hosts) checkUrl(name, `${match[1]}//${match[2]}${host}${match[4]}`, protocols);
    return value;
  }

  /** A rate written "points/seconds", such as "10/60" for ten per minute. */
  rate(name: string, fallback: string): { points: number; duration: number } {
    const value = this.raw(name) ?? fallback;
    const match = /^(\d+)\/(\d+)$/.exec(value);
    const points = Number(match?.[1]);
    const duration = Number(match?.[2]);
    if (!match || points < 1 || duration < 1) {
      throw new ConfigError(name, `expected "points/seconds" such as "10/60", got "${value}"`);
    }
    return { points, duration };
  }
}
