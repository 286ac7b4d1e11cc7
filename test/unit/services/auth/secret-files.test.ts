import assert from "node:assert/strict";
import { chmod, mkdir, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { secureDir, securePath } from "../../../../lib/secret-files.ts";
import { tempDirs } from "../../../support/temp-dirs.ts";

const newDir = tempDirs("social-secret-files-");
const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

describe("secret files", () => {
  test("a missing folder is made 0700", async () => {
    const dir = path.join(await newDir(), "data", "nested");
    const warnings: string[] = [];
    assert.deepEqual(
      secureDir(dir, (m) => warnings.push(m)),
      [],
    );
    assert.equal(await modeOf(dir), 0o700);
    assert.deepEqual(warnings, []);
  });

  test("the file store's folder is narrowed but not walked: its uploads are the file store's to keep", async () => {
    const dir = await newDir();
    await mkdir(path.join(dir, "files", "ab"), { recursive: true, mode: 0o755 });
    await chmod(path.join(dir, "files"), 0o755);
    const upload = path.join(dir, "files", "ab", "abcdef");
    await writeFile(upload, "bytes", { mode: 0o644 });
    const fixed = secureDir(dir, () => undefined);
    assert.deepEqual(fixed, [path.join(dir, "files")]);
    assert.equal(await modeOf(path.join(dir, "files")), 0o700);
    assert.equal(await modeOf(upload), 0o644, "not walked");
  });

  test("a folder and files open to others are narrowed to 0700 and 0600, each with a warning", async () => {
    const dir = await newDir();
    await chmod(dir, 0o755);
    const db = path.join(dir, "social.sqlite");
    await writeFile(db, "keys", { mode: 0o644 });
    await writeFile(`${db}-wal`, "wal", { mode: 0o640 });
    await mkdir(path.join(dir, "replaced-1"), { mode: 0o775 });
    await writeFile(path.join(dir, "replaced-1", "social.sqlite"), "old", { mode: 0o666 });
    const kept = path.join(dir, "social.lock");
    await writeFile(kept, "{}", { mode: 0o600 });
    const warnings: string[] = [];
    const fixed = secureDir(dir, (m) => warnings.push(m));
    assert.equal(fixed.length, 5);
    assert.equal(await modeOf(dir), 0o700);
    assert.equal(await modeOf(db), 0o600);
    assert.equal(await modeOf(`${db}-wal`), 0o600);
    assert.equal(await modeOf(path.join(dir, "replaced-1")), 0o700);
    assert.equal(await modeOf(path.join(dir, "replaced-1", "social.sqlite")), 0o600);
    assert.equal(await modeOf(kept), 0o600);
    assert.equal(warnings.length, 5);
    assert.ok(
      warnings.some((w) => w.includes(db) && w.includes("0644") && w.includes("0600")),
      warnings.join("\n"),
    );
    assert.ok(!warnings.some((w) => w.includes(kept)), "a file already 0600 is left alone, silently");
  });

  test("a symbolic link is not followed, so a file elsewhere keeps its mode", async () => {
    const dir = await newDir();
    const outside = path.join(await newDir(), "elsewhere.txt");
    await writeFile(outside, "x", { mode: 0o644 });
    await symlink(outside, path.join(dir, "link"));
    secureDir(dir, () => undefined);
    assert.equal(await modeOf(outside), 0o644);
  });

  test("a single file is narrowed too, and a missing path is skipped", async () => {
    const file = path.join(await newDir(), "signing-key.jwk");
    await writeFile(file, "{}", { mode: 0o604 });
    assert.deepEqual(
      securePath(file, () => undefined),
      [file],
    );
    assert.equal(await modeOf(file), 0o600);
    assert.deepEqual(
      securePath(`${file}.missing`, () => undefined),
      [],
    );
  });
});
