/**
 * Keys that name an object's prototype machinery. `JSON.parse` makes `"__proto__"` an own key,
 * but the first plain assignment or `Object.assign` of it (moleculer-web merges body, query and
 * path params that way) sets the target's prototype instead, and every field read then falls
 * through to it: `{"__proto__": {"bio": "x"}}` passed the unknown-field check and set `bio`.
 * `constructor` and `prototype` serve the same tricks elsewhere. No request body, query or
 * WebSocket frame of the platform has a field so named, so any of them, at any depth, is an
 * unknown field and the input is refused before anything reads it.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * The dotted path of the first forbidden key in a parsed JSON value (`"__proto__"`,
 * `"chats.constructor"`, `"memberIds.0.__proto__"`), or undefined when it has none. Walks
 * without recursion, so a deeply nested value cannot overflow the stack.
 */
export function forbiddenKeyPath(value: unknown): string | undefined {
  const pending: [unknown, string][] = [[value, ""]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, path] = next;
    if (typeof node !== "object" || node === null) continue;
    for (const key of Object.keys(node)) {
      const at = path === "" ? key : `${path}.${key}`;
      if (FORBIDDEN_KEYS.has(key)) return at;
      pending.push([(node as Record<string, unknown>)[key], at]);
    }
  }
  return undefined;
}

/**
 * The first forbidden name in a raw query string, in any part of a key: `__proto__=x`,
 * `q[constructor]=x`, `a[b][prototype]=x`, percent-encoded or not. qs, which moleculer-web parses
 * queries with, drops such keys without a word; they are refused instead, like unknown fields.
 */
export function forbiddenQueryKey(search: string): string | undefined {
  for (const key of new URLSearchParams(search).keys()) {
    for (const part of key.split(/[[\].]/)) {
      if (FORBIDDEN_KEYS.has(part)) return key;
    }
  }
  return undefined;
}
