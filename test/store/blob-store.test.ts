/**
 * One contract for both file stores: DiskBlobStore over a temp dir and S3BlobStore over a SeaweedFS
 * the test starts (test/harness/seaweedfs.ts). Then what only one of them has: the disk store's temp
 * files, the S3 store's multipart uploads and the store going away mid-upload.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { loadConfig } from "../../lib/config.ts";
import { BlobNotFoundError, type BlobStore, BlobStoreUnavailableError } from "../../lib/files/blob-store.ts";
import { DiskBlobStore } from "../../lib/files/disk-blob-store.ts";
import { openBlobStore } from "../../lib/files/index.ts";
import { PART_SIZE, S3BlobStore } from "../../lib/files/s3-blob-store.ts";
import { type SeaweedHandle, startSeaweed } from "../harness/seaweedfs.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const tempDir = tempDirs("blob-store-test-");

/** 12 MiB and a bit: three 5 MiB parts when the size is not known. */
const DATA = randomBytes(2 * PART_SIZE + 2 * 1024 * 1024 + 123);
const CHUNK = 64 * 1024;

let keys = 0;
function newKey(): string {
  return `${randomBytes(12).toString("base64url")}-${keys++}`;
}

/**
 * `data` as a stream of 64 KiB chunks. With `failAt`, the stream errors with `failWith` once that
 * many bytes went out; `onBytes` sees the count after each chunk.
 */
function bodyOf(
  data: Buffer,
  options: { failAt?: number; failWith?: Error; onBytes?: (sent: number) => void } = {},
): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (options.failAt !== undefined && sent >= options.failAt) {
        this.destroy(options.failWith ?? new Error("the client went away"));
        return;
      }
      if (sent >= data.length) {
        this.push(null);
        return;
      }
      const chunk = data.subarray(sent, Math.min(sent + CHUNK, data.length));
      sent += chunk.length;
      this.push(chunk);
      options.onBytes?.(sent);
    },
  });
}

/** Endless bytes, for uploads the store is killed in the middle of. */
function endlessBody(onBytes: (sent: number) => void): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      const chunk = DATA.subarray(0, CHUNK);
      sent += chunk.length;
      this.push(chunk);
      onBytes(sent);
    },
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

async function sha256Of(stream: Readable): Promise<{ hash: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash: hash.digest("hex"), size };
}

async function assertAbsent(store: BlobStore, key: string): Promise<void> {
  await assert.rejects(store.get(key), BlobNotFoundError);
}

interface Subject {
  store: BlobStore;
  /** Files or multipart uploads a failed put may have left behind (both must be none). */
  leftovers(): Promise<string[]>;
}

function blobStoreContract(name: string, open: () => Promise<Subject>, extra?: (s: () => Subject) => void) {
  describe(`blob store contract: ${name}`, () => {
    let subject: Subject;
    before(async () => {
      subject = await open();
    });
    after(async () => {
      await subject?.store.close();
    });

    for (const known of [true, false]) {
      test(`a multi-MB stream of ${known ? "known" : "unknown"} size comes back byte for byte`, async () => {
        const { store } = subject;
        const key = newKey();
        await store.put(key, bodyOf(DATA), {
          contentType: "application/octet-stream",
          ...(known ? { size: DATA.length } : {}),
        });
        assert.deepEqual(await sha256Of(await store.get(key)), { hash: sha256(DATA), size: DATA.length });
        assert.deepEqual(await subject.leftovers(), []);
      });
    }

    test("small and empty blobs, and keys with a suffix", async () => {
      const { store } = subject;
      const key = newKey();
      await store.put(key, bodyOf(Buffer.from("hello")), { contentType: "text/plain", size: 5 });
      await store.put(`${key}.thumb320`, bodyOf(Buffer.from("thumb")), { contentType: "image/webp" });
      await store.put(`${key}.empty`, bodyOf(Buffer.alloc(0)), { contentType: "text/plain", size: 0 });
      assert.equal((await readAll(await store.get(key))).toString(), "hello");
      assert.equal((await readAll(await store.get(`${key}.thumb320`))).toString(), "thumb");
      assert.equal((await readAll(await store.get(`${key}.empty`))).length, 0);
    });

    test("ranges: the first bytes, the middle, the last byte, the whole", async () => {
      const { store } = subject;
      const key = newKey();
      await store.put(key, bodyOf(DATA), { contentType: "application/octet-stream", size: DATA.length });
      const last = DATA.length - 1;
      const ranges = [
        { start: 0, end: 0 },
        { start: 0, end: 99 },
        { start: PART_SIZE - 10, end: PART_SIZE + 10 },
        { start: 1_234_567, end: 7_654_321 },
        { start: last, end: last },
        { start: 0, end: last },
      ];
      for (const range of ranges) {
        const got = await readAll(await store.get(key, range));
        assert.equal(got.length, range.end - range.start + 1, `range ${range.start}-${range.end}`);
        assert.ok(got.equals(DATA.subarray(range.start, range.end + 1)), `range ${range.start}-${range.end}`);
      }
      // An end past the last byte is cut at the last byte, as in HTTP.
      const tail = await readAll(await store.get(key, { start: last - 9, end: last + 1000 }));
      assert.ok(tail.equals(DATA.subarray(last - 9)));
      await assert.rejects(store.get(key, { start: 5, end: 4 }), RangeError);
      await assert.rejects(store.get(key, { start: DATA.length, end: DATA.length + 5 }), RangeError);
    });

    test("a missing key is BlobNotFoundError, with or without a range", async () => {
      const { store } = subject;
      await assert.rejects(store.get(newKey()), BlobNotFoundError);
      await assert.rejects(store.get(newKey(), { start: 0, end: 10 }), BlobNotFoundError);
    });

    test("delete removes a blob and is idempotent", async () => {
      const { store } = subject;
      const key = newKey();
      await store.put(key, bodyOf(Buffer.from("bye")), { contentType: "text/plain", size: 3 });
      await store.delete(key);
      await assertAbsent(store, key);
      await store.delete(key);
      await store.delete(newKey());
    });

    test("keys other than opaque ids are refused", async () => {
      const { store } = subject;
      for (const key of ["", "../etc", "a/b", "a\\b", ".hidden", "a..b", "a.", "é", "a b", "x".repeat(201)]) {
        await assert.rejects(store.put(key, bodyOf(Buffer.from("x")), { contentType: "text/plain" }), {
          message: /Invalid blob key/,
        });
        await assert.rejects(store.get(key), { message: /Invalid blob key/ });
        await assert.rejects(store.delete(key), { message: /Invalid blob key/ });
      }
    });

    for (const size of ["known", "unknown", "known and checked by the body"] as const) {
      test(`a body that errors halfway (${size} size) rejects with its error and leaves nothing`, async () => {
        const { store } = subject;
        const key = newKey();
        const failure = new Error("client aborted");
        // Past the first 5 MiB part, so a multipart upload was under way.
        const body = bodyOf(DATA, { failAt: PART_SIZE + 3 * CHUNK, failWith: failure });
        const put = store.put(key, body, {
          contentType: "application/octet-stream",
          ...(size !== "unknown" ? { size: DATA.length } : {}),
          ...(size === "known and checked by the body" ? { sizeChecked: true } : {}),
        });
        await assert.rejects(put, (err) => err === failure);
        await assertAbsent(store, key);
        assert.deepEqual(await subject.leftovers(), []);
      });
    }

    test("a body shorter or longer than its announced size is refused and not kept", async () => {
      const { store } = subject;
      const short = newKey();
      await assert.rejects(
        store.put(short, bodyOf(DATA.subarray(0, 1000)), { contentType: "text/plain", size: 1001 }),
        { message: /not its announced 1001/ },
      );
      await assertAbsent(store, short);
      const long = newKey();
      await assert.rejects(
        store.put(long, bodyOf(DATA.subarray(0, 1000)), { contentType: "text/plain", size: 999 }),
        { message: /longer than its announced size 999/ },
      );
      await assertAbsent(store, long);
      assert.deepEqual(await subject.leftovers(), []);
    });

    test("ping resolves while the store answers", async () => {
      await subject.store.ping();
    });

    extra?.(() => subject);
  });
}

blobStoreContract(
  "disk (a temp dir)",
  async () => {
    const dir = path.join(await tempDir(), "files");
    const store = await DiskBlobStore.open(dir);
    return { store, leftovers: async () => readdir(path.join(dir, "tmp")) };
  },
  (subject) => {
    test("disk: a blob lives at <dir>/<first 2 chars>/<key>", async () => {
      const store = subject().store as DiskBlobStore;
      const key = newKey();
      await store.put(key, bodyOf(Buffer.from("here")), { contentType: "text/plain" });
      assert.deepEqual(await readdir(path.join(store.dir, key.slice(0, 2))), [key]);
      assert.equal(
        (await stat(path.join(store.dir, key.slice(0, 2), key))).mode & 0o777,
        0o600,
        "the owner's alone",
      );
      assert.equal((await stat(path.join(store.dir, key.slice(0, 2)))).mode & 0o777, 0o700);
    });

    test("disk: temp files older than an hour are removed at open, younger ones kept", async () => {
      const dir = path.join(await tempDir(), "files");
      await DiskBlobStore.open(dir);
      const old = path.join(dir, "tmp", "old.part");
      const young = path.join(dir, "tmp", "young.part");
      await writeFile(old, "left by a crash");
      await writeFile(young, "being written");
      const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
      await utimes(old, twoHoursAgo, twoHoursAgo);
      await DiskBlobStore.open(dir);
      assert.deepEqual(await readdir(path.join(dir, "tmp")), ["young.part"]);
    });

    test("disk: a failing disk is BlobStoreUnavailableError, and ping says so", async () => {
      const dir = path.join(await tempDir(), "files");
      const store = await DiskBlobStore.open(dir);
      // The temp folder replaced by a file: every write fails with ENOTDIR.
      await rm(path.join(dir, "tmp"), { recursive: true });
      await writeFile(path.join(dir, "tmp"), "not a folder");
      const body = bodyOf(Buffer.from("lost"));
      await assert.rejects(
        store.put(newKey(), body, { contentType: "text/plain" }),
        BlobStoreUnavailableError,
      );
      await assert.rejects(store.ping(), BlobStoreUnavailableError);
    });
  },
);

let seaweed: SeaweedHandle | undefined;
before(async () => {
  seaweed = await startSeaweed();
});
after(async () => {
  await seaweed?.stop();
});

function s3Store(handle: SeaweedHandle): S3BlobStore {
  return new S3BlobStore(
    { endpoint: handle.endpoint, bucket: handle.bucket, region: handle.region, forcePathStyle: true },
    { credentials: { accessKeyId: handle.accessKeyId, secretAccessKey: handle.secretAccessKey } },
  );
}

async function multipartUploads(store: S3BlobStore): Promise<string[]> {
  const out = await store.client.send(
    new ListMultipartUploadsCommand({ Bucket: store.bucket, Prefix: store.prefix }),
  );
  return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

blobStoreContract(
  "s3 (SeaweedFS)",
  async () => {
    assert.ok(seaweed);
    const store = s3Store(seaweed);
    await store.ensureBucket();
    return { store, leftovers: () => multipartUploads(store) };
  },
  (subject) => {
    test("s3: ensureBucket is idempotent, and objects live under the prefix", async () => {
      const store = subject().store as S3BlobStore;
      await store.ensureBucket();
      const key = newKey();
      await store.put(key, bodyOf(Buffer.from("prefixed")), { contentType: "text/plain" });
      const listed = await store.client.send(
        new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `files/${key}` }),
      );
      assert.deepEqual(
        listed.Contents?.map((o) => o.Key),
        [`files/${key}`],
      );
    });

    test("s3: the store killed mid-upload → BlobStoreUnavailableError; after a restart nothing is left", async () => {
      assert.ok(seaweed);
      const store = subject().store as S3BlobStore;
      let killing: Promise<void> | undefined;
      // Both uploads are past their first 5 MiB part when the store goes away.
      const killAfter = (sent: number) => {
        if (sent >= PART_SIZE + 8 * CHUNK && !killing) killing = seaweed?.kill();
      };
      const knownKey = newKey();
      const unknownKey = newKey();
      const started = Date.now();
      const outcomes = await Promise.allSettled([
        store.put(knownKey, endlessBody(killAfter), {
          contentType: "application/octet-stream",
          size: 64 * 1024 * 1024,
        }),
        store.put(unknownKey, endlessBody(killAfter), { contentType: "application/octet-stream" }),
      ]);
      const elapsed = Date.now() - started;
      await killing;
      for (const outcome of outcomes) {
        assert.equal(outcome.status, "rejected");
        assert.ok(
          outcome.reason instanceof BlobStoreUnavailableError,
          `expected BlobStoreUnavailableError, got ${outcome.reason}`,
        );
      }
      assert.ok(elapsed < 15_000, `the puts took ${elapsed} ms to fail`);
      // The multipart upload could not be aborted while the store was down: it waits.
      assert.ok(store.pendingCleanups >= 1);
      await assert.rejects(store.ping(), BlobStoreUnavailableError);
      await assert.rejects(store.get(knownKey), BlobStoreUnavailableError);
      await seaweed.restart();
      await assertAbsent(store, knownKey);
      await assertAbsent(store, unknownKey);
      // The store answered again, so its pending cleanups ran (or are running: wait for them).
      await store.retryCleanups();
      assert.equal(store.pendingCleanups, 0);
      assert.deepEqual(await multipartUploads(store), []);

      // A put right after the restart waits in the gateway for the master's warm-up (about 11 s).
      const again = newKey();
      await store.put(again, bodyOf(DATA), { contentType: "application/octet-stream" });
      assert.deepEqual(await sha256Of(await store.get(again)), { hash: sha256(DATA), size: DATA.length });
    });

    test("s3: multipart uploads a crash left behind are aborted once an hour old", async () => {
      const store = subject().store as S3BlobStore;
      const { CreateMultipartUploadCommand } = await import("@aws-sdk/client-s3");
      const leftover = await store.client.send(
        new CreateMultipartUploadCommand({ Bucket: store.bucket, Key: `${store.prefix}${newKey()}` }),
      );
      assert.equal(await store.abortStaleUploads(), 0, "a young upload stays");
      assert.deepEqual(await multipartUploads(store), [`${leftover.Key} ${leftover.UploadId}`]);
      assert.equal(await store.abortStaleUploads(-60_000), 1);
      assert.deepEqual(await multipartUploads(store), []);
    });
  },
);

describe("openBlobStore", () => {
  test("disk by default, in DATA_DIR/files", async () => {
    const dataDir = await tempDir();
    const store = await openBlobStore(loadConfig({ DATA_DIR: dataDir }).files);
    assert.ok(store instanceof DiskBlobStore);
    assert.equal(store.dir, path.join(dataDir, "files"));
    await store.close();
  });

  test("s3 without a bucket is an error at start", async () => {
    const files = loadConfig({ FILE_STORE: "s3", DATA_DIR: await tempDir() }).files;
    await assert.rejects(openBlobStore(files), { message: "S3_BUCKET is required when FILE_STORE=s3" });
  });

  test("s3 from the env: credentials from the SDK's chain, a missing bucket made", async () => {
    assert.ok(seaweed);
    const env: Record<string, string> = {
      ...seaweed.env,
      S3_BUCKET: "social-test-fresh",
      DATA_DIR: await tempDir(),
    };
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = seaweed.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = seaweed.secretAccessKey;
    try {
      const store = await openBlobStore(loadConfig(env).files);
      assert.ok(store instanceof S3BlobStore);
      assert.equal(store.bucket, "social-test-fresh");
      await store.ping();
      const key = newKey();
      await store.put(key, bodyOf(Buffer.from("fresh")), { contentType: "text/plain" });
      assert.equal((await readAll(await store.get(key))).toString(), "fresh");
      await store.close();
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});
