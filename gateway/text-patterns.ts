/**
 * Regular expressions (as JSON Schema `pattern` strings) for text rules the server applies with
 * JavaScript's `trim()`: the whitespace it removes is spelled out rather than written `\s`, whose
 * meaning differs between regex engines (a fuzzer's generator reads these with Python's).
 */
const SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff";

/** One character `trim()` removes. */
export const WS = `[${SPACE}]`;
/** One character `trim()` keeps. */
export const NON_WS = `[^${SPACE}]`;
