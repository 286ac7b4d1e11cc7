/**
 * File names as clients give them, made safe to store and to send back in Content-Disposition:
 * no folder parts, no control or format characters (so no bidi overrides that disguise an
 * extension), one space for any run of white space, no leading dots, at most 255 UTF-8 bytes.
 */

/** The longest stored name, in UTF-8 bytes (what most file systems allow). */
export const MAX_NAME_BYTES = 255;
/** An extension longer than this is not kept whole when a name is cut. */
const MAX_EXTENSION_CHARS = 16;

/** The name to keep, or null when nothing is left of it. */
export function sanitizeFileName(raw: string): string | null {
  const base = raw.split(/[/\\]/).pop() ?? "";
  const cleaned = base
    .normalize("NFC")
    .replace(/\s+/gu, " ")
    .replace(/[\p{Cc}\p{Cf}]/gu, "")
    .trim()
    .replace(/^\.+/, "")
    .trim();
  if (cleaned === "") return null;
  return cut(cleaned, MAX_NAME_BYTES);
}

/** The name cut to `max` UTF-8 bytes on a code point boundary, its extension kept when short. */
function cut(name: string, max: number): string {
  if (Buffer.byteLength(name) <= max) return name;
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 && name.length - dot <= MAX_EXTENSION_CHARS + 1 ? name.slice(dot) : "";
  const stem = ext ? name.slice(0, dot) : name;
  let out = "";
  let bytes = Buffer.byteLength(ext);
  for (const ch of stem) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return (out.trimEnd() || "file") + ext;
}

/**
 * A Content-Disposition header (RFC 6266): an ASCII `filename` for old clients, and the exact name
 * as `filename*` (RFC 8187).
 */
export function contentDisposition(kind: "inline" | "attachment", name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, "_").replace(/["\\%]/g, "_");
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
