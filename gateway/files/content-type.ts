/**
 * What an upload is, found from its first bytes and never from what the client says: binary
 * formats by their signatures (file-type), then text. Markup is told apart from plain text, so
 * an HTML or SVG file cannot pass as text/plain and is refused unless its type is allowed.
 */
import { fileTypeFromBuffer } from "file-type";
import { imageSize } from "image-size";

/** Bytes of an upload read before its type is decided (what file-type needs at most). */
export const SNIFF_BYTES = 4_100;
/** Bytes of an image kept to read its width and height (JPEG headers can sit after EXIF data). */
export const IMAGE_HEAD_BYTES = 512 * 1024;

/** The raster images browsers show and thumbnails are made of; served inline. */
const RASTER = new Set(["image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"]);

/** file-type's names where they differ from the ones UPLOAD_ALLOWED_TYPES uses. */
const ALIASES: Record<string, string> = {
  "audio/x-m4a": "audio/mp4",
  "audio/x-flac": "audio/flac",
  "audio/vnd.wave": "audio/wav",
  "audio/x-wav": "audio/wav",
  "video/x-m4v": "video/mp4",
  "image/apng": "image/png",
};

const MARKUP =
  /^(?:<!doctype\s+html|<html|<head|<body|<script|<iframe|<object|<embed|<style|<meta|<a\s|<img|<div|<!--)/i;

export async function sniffContentType(head: Buffer): Promise<string> {
  const found = await fileTypeFromBuffer(head);
  if (found) {
    const mime = found.mime.split(";")[0]?.trim().toLowerCase() ?? found.mime;
    if (mime === "application/xml") return xmlKind(head);
    return ALIASES[mime] ?? mime;
  }
  const text = utf8Text(head);
  if (text === null) return "application/octet-stream";
  const start = text.replace(/^\uFEFF/, "").trimStart();
  if (MARKUP.test(start)) return "text/html";
  if (/^<\?xml|^<svg/i.test(start)) return xmlKind(head);
  return "text/plain";
}

function xmlKind(head: Buffer): string {
  return /<svg[\s>]/i.test(head.toString("latin1")) ? "image/svg+xml" : "application/xml";
}

/** The bytes as UTF-8 text, or null when they are not text (invalid UTF-8, NUL or other controls). */
function utf8Text(head: Buffer): string | null {
  // The head may end inside a character: up to 3 bytes of it are left out.
  for (let cut = 0; cut <= 3 && cut <= head.length; cut++) {
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(head.subarray(0, head.length - cut));
      return hasControls(text) ? null : text;
    } catch {}
  }
  return null;
}

/** C0 controls other than tab, line feed, vertical tab, form feed and carriage return, and DEL. */
function hasControls(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x09 || (c > 0x0d && c < 0x20) || c === 0x7f) return true;
  }
  return false;
}

export function isRasterImage(contentType: string): boolean {
  return RASTER.has(contentType);
}

/** An image's width and height as shown (EXIF rotation applied), when its head tells them. */
export function imageDimensions(head: Buffer): { width: number; height: number } | undefined {
  try {
    const size = imageSize(head);
    if (!size.width || !size.height) return undefined;
    const turned = size.orientation !== undefined && size.orientation >= 5 && size.orientation <= 8;
    return turned ? { width: size.height, height: size.width } : { width: size.width, height: size.height };
  } catch {
    return undefined;
  }
}
