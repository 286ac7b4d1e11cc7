/**
 * Uploads (services/chat/uploads.ts) on the embedded store, as two chat nodes that share it: refs
 * added and removed at once from both end exact, a file is purged once and its bytes leave the
 * quota once, a sweep leaves a just-claimed upload alone, and two commits racing for the last of a
 * quota let one through.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { BlobNotFoundError } from "../../../../lib/files/blob-store.ts";
import { DiskBlobStore } from "../../../../lib/files/disk-blob-store.ts";
import { openStore } from "../../../../lib/store/index.ts";
import type { Store } from "../../../../lib/store/types.ts";
import { UploadsRepository, UploadUsageRepository } from "../../../../services/chat/uploads.repo.ts";
import { Uploads } from "../../../../services/chat/uploads.ts";

let dir: string;
let store: Store;
let blobs: DiskBlobStore;
let nodes: Uploads[];
const QUOTA = 1_000;
const TTL_MS = 60_000;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "uploads-"));
  store = await openStore({ dataDir: dir });
  blobs = await DiskBlobStore.open(path.join(dir, "files"));
  const records = new UploadsRepository(store.collection("uploads"));
  const usage = new UploadUsageRepository(store.collection("upload_usage"));
  await Promise.all([records.init(), usage.init()]);
  const node = () =>
    new Uploads({
      uploads: new UploadsRepository(store.collection("uploads")),
      usage: new UploadUsageRepository(store.collection("upload_usage")),
      blobs,
      quotaBytes: QUOTA,
      orphanTtlMs: TTL_MS,
      isMember: async () => true,
      warn: () => undefined,
    });
  nodes = [node(), node()];
});
after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function stored(owner: string, size: number) {
  const [a] = nodes as [Uploads, Uploads];
  const begun = await a.begin(owner, "f.txt", "text/plain", size);
  await blobs.put(begun.key, Readable.from([Buffer.alloc(size, 1)]), { contentType: "text/plain", size });
  return a.commit(owner, begun.id, { size, sha256: "a".repeat(64) });
}

async function exists(key: string): Promise<boolean> {
  try {
    (await blobs.get(key)).destroy();
    return true;
  } catch (err) {
    if (err instanceof BlobNotFoundError) return false;
    throw err;
  }
}

const used = (owner: string) => new UploadUsageRepository(store.collection("upload_usage")).used(owner);
const record = (id: string) => new UploadsRepository(store.collection("uploads")).get(id);

test("refs added at once from two nodes all land; removed at once, the file goes once", async () => {
  const view = await stored("u1", 100);
  const messages = Array.from({ length: 20 }, (_, i) => `chat1_${i + 1}`);
  await Promise.all(messages.map((m, i) => (nodes[i % 2] as Uploads).attach([view.id], m)));
  assert.deepEqual((await record(view.id))?.refs.sort(), [...messages].sort());
  assert.equal(await used("u1"), 100);

  await Promise.all(messages.map((m, i) => (nodes[i % 2] as Uploads).detach([view.id], m)));
  assert.equal(await record(view.id), null, "the record is gone");
  assert.equal(await exists(view.id), false, "the bytes are gone");
  assert.equal(await used("u1"), 0, "its bytes left the quota once");
});

test("a sweep removes old uploads nothing holds, once, and leaves claimed and attached ones", async () => {
  const orphan = await stored("u2", 10);
  const claimed = await stored("u2", 20);
  const attached = await stored("u2", 30);
  await (nodes[0] as Uploads).claim("u2", [claimed.id]);
  await (nodes[1] as Uploads).attach([attached.id], "chat2_1");
  const later = Date.now() + TTL_MS + 1_000;
  const removed = await Promise.all(nodes.map((n) => n.sweep(later)));
  assert.equal(
    removed.reduce((a, b) => a + b, 0),
    1,
    "one node removed it",
  );
  assert.equal(await record(orphan.id), null);
  assert.equal(await exists(orphan.id), false);
  assert.ok(await record(claimed.id), "a send is attaching it");
  assert.ok(await record(attached.id));
  assert.equal(await used("u2"), 50);
});

test("two commits racing for the last of a quota: one is stored, the other refused and removed", async () => {
  const [a, b] = nodes as [Uploads, Uploads];
  await stored("u3", 600);
  const [x, y] = await Promise.all([
    a.begin("u3", "x", "text/plain", 300),
    b.begin("u3", "y", "text/plain", 300),
  ]);
  const results = await Promise.allSettled([
    a.commit("u3", x.id, { size: 300, sha256: "b".repeat(64) }),
    b.commit("u3", y.id, { size: 300, sha256: "c".repeat(64) }),
  ]);
  const refused = results.filter((r) => r.status === "rejected");
  assert.equal(refused.length, 1, JSON.stringify(results.map((r) => r.status)));
  assert.equal(
    ((refused[0] as PromiseRejectedResult).reason as { type: string }).type,
    "UPLOAD_QUOTA_EXCEEDED",
  );
  assert.equal(await used("u3"), 900);
  const left = await Promise.all([record(x.id), record(y.id)]);
  assert.equal(left.filter((r) => r !== null).length, 1, "the refused one's record is removed");
});

test("an aborted upload leaves no record and nothing counted; a pending one is swept after an hour", async () => {
  const [a] = nodes as [Uploads, Uploads];
  const begun = await a.begin("u4", "x", "text/plain");
  await a.abort("u4", begun.id);
  assert.equal(await record(begun.id), null);
  const stale = await a.begin("u4", "y", "text/plain");
  await a.sweep(Date.now() + 30 * 60_000);
  assert.ok(await record(stale.id), "still streaming, perhaps");
  await a.sweep(Date.now() + 61 * 60_000);
  assert.equal(await record(stale.id), null);
  assert.equal(await used("u4"), 0);
});
