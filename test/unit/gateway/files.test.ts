/** The pure parts of the file routes: ranges, names, Content-Disposition and type sniffing. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import sharp from "sharp";
import { parseRange } from "../../../gateway/files/byte-range.ts";
import { imageDimensions, isRasterImage, sniffContentType } from "../../../gateway/files/content-type.ts";
import { contentDisposition, sanitizeFileName } from "../../../gateway/files/file-names.ts";

describe("parseRange", () => {
  const cases: [string | undefined, number, ReturnType<typeof parseRange>][] = [
    [undefined, 10, { kind: "whole" }],
    ["bytes=0-0", 10, { kind: "partial", start: 0, end: 0 }],
    ["bytes=2-5", 10, { kind: "partial", start: 2, end: 5 }],
    ["bytes=2-", 10, { kind: "partial", start: 2, end: 9 }],
    ["bytes=9-", 10, { kind: "partial", start: 9, end: 9 }],
    ["bytes=3-99", 10, { kind: "partial", start: 3, end: 9 }],
    ["bytes=-4", 10, { kind: "partial", start: 6, end: 9 }],
    ["bytes=-40", 10, { kind: "partial", start: 0, end: 9 }],
    ["bytes=10-", 10, { kind: "unsatisfiable" }],
    ["bytes=10-20", 10, { kind: "unsatisfiable" }],
    ["bytes=-0", 10, { kind: "unsatisfiable" }],
    [" bytes=1-2 ", 10, { kind: "partial", start: 1, end: 2 }],
    ["bytes=5-2", 10, { kind: "whole" }],
    ["bytes=-", 10, { kind: "whole" }],
    ["bytes=a-b", 10, { kind: "whole" }],
    ["bytes=0-1,3-4", 10, { kind: "whole" }],
    ["items=0-1", 10, { kind: "whole" }],
    ["bytes=99999999999999999999-", 10, { kind: "whole" }],
  ];
  for (const [header, size, expected] of cases) {
    test(`${JSON.stringify(header)} of ${size} bytes`, () =>
      assert.deepEqual(parseRange(header, size), expected));
  }
});

describe("sanitizeFileName", () => {
  test("keeps the last path part, drops controls and format characters, trims, cuts to 255 bytes", () => {
    assert.equal(sanitizeFileName("a/b/c.txt"), "c.txt");
    assert.equal(sanitizeFileName("a\\b\\c.txt"), "c.txt");
    assert.equal(sanitizeFileName("evil\u202Egnp.exe"), "evilgnp.exe");
    assert.equal(sanitizeFileName("tab\there.txt"), "tab here.txt");
    assert.equal(sanitizeFileName("..."), null);
    assert.equal(sanitizeFileName("../"), null);
    assert.equal(sanitizeFileName(" \u0000 "), null);
    const long = sanitizeFileName(`${"a".repeat(400)}.jpeg`) as string;
    assert.equal(Buffer.byteLength(long), 255);
    assert.ok(long.endsWith(".jpeg"));
    const emoji = sanitizeFileName(`${"😀".repeat(100)}.png`) as string;
    assert.ok(Buffer.byteLength(emoji) <= 255);
    assert.ok(emoji.endsWith(".png") && !emoji.includes("\uFFFD"), "cut on a code point boundary");
    assert.equal(sanitizeFileName("e\u0301.txt"), "é.txt", "NFC");
  });

  test("Content-Disposition gives an ASCII fallback and the exact name (RFC 6266, 8187)", () => {
    assert.equal(
      contentDisposition("attachment", "résumé (1).pdf"),
      `attachment; filename="r_sum_ (1).pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%281%29.pdf`,
    );
    assert.equal(
      contentDisposition("inline", 'a"b\\c.png'),
      `inline; filename="a_b_c.png"; filename*=UTF-8''a%22b%5Cc.png`,
    );
  });
});

describe("sniffContentType", () => {
  const sniff = (text: string) => sniffContentType(Buffer.from(text));
  test("binary formats by signature, whatever they claim", async () => {
    assert.equal(
      await sniffContentType(
        await sharp({ create: { width: 2, height: 2, channels: 3, background: "#fff" } })
          .png()
          .toBuffer(),
      ),
      "image/png",
    );
    assert.equal(
      await sniffContentType(
        await sharp({ create: { width: 2, height: 2, channels: 3, background: "#fff" } })
          .jpeg()
          .toBuffer(),
      ),
      "image/jpeg",
    );
    assert.equal(await sniff("%PDF-1.7\n"), "application/pdf");
    assert.equal(
      await sniffContentType(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0])),
      "application/zip",
    );
    assert.equal(
      await sniffContentType(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])),
      "application/x-elf",
    );
  });
  test("markup is not text: HTML and SVG are found as such", async () => {
    for (const html of [
      "<!DOCTYPE html><p>",
      "  <html>",
      "\uFEFF<script>x</script>",
      "<iframe src=x>",
      "<!-- c --><b>",
    ]) {
      assert.equal(await sniff(html), "text/html", html);
    }
    assert.equal(await sniff('<svg xmlns="http://www.w3.org/2000/svg"></svg>'), "image/svg+xml");
    assert.equal(await sniff('<?xml version="1.0"?>\n<svg onload="x"/>'), "image/svg+xml");
    assert.equal(await sniff('<?xml version="1.0"?><note/>'), "application/xml");
  });
  test("UTF-8 without control characters is text; anything else is octet-stream", async () => {
    assert.equal(await sniff("hello\r\n\tworld, ünïcode ✓"), "text/plain");
    assert.equal(await sniff("a < b and c > d"), "text/plain");
    assert.equal(await sniffContentType(Buffer.from([0x68, 0x00, 0x69])), "application/octet-stream");
    assert.equal(await sniffContentType(Buffer.from([0xff, 0xfe, 0x41, 0x00])), "application/octet-stream");
    // A head cut inside a character is still text.
    assert.equal(await sniffContentType(Buffer.from("ab✓").subarray(0, 4)), "text/plain");
  });
  test("raster images are what is shown inline and thumbnailed; their size is read from the head", async () => {
    assert.ok(
      isRasterImage("image/webp") && !isRasterImage("image/svg+xml") && !isRasterImage("application/pdf"),
    );
    const image = await sharp({ create: { width: 33, height: 21, channels: 3, background: "#000" } })
      .png()
      .toBuffer();
    assert.deepEqual(imageDimensions(image), { width: 33, height: 21 });
    assert.equal(imageDimensions(Buffer.from("not an image")), undefined);
    const rotated = await sharp({ create: { width: 40, height: 10, channels: 3, background: "#000" } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    assert.deepEqual(imageDimensions(rotated), { width: 10, height: 40 }, "EXIF rotation applied");
  });
});
