/**
 * Attachments in a cluster: three gateways and two chat nodes over a real nats-server, Redis and
 * FerretDB, with the files in SeaweedFS through its S3 API. A file uploaded through one gateway is
 * sent, read, ranged and thumbnailed through the others; deleting its message removes its object;
 * the object store going away mid-upload is a clear 503 that leaves no object and no record, and
 * once it is back every gateway serves again.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { ApiClient } from "../../client/rest-client.ts";
import type { MessageView, UploadView } from "../../lib/contracts.ts";
import { BlobNotFoundError } from "../../lib/files/blob-store.ts";
import { S3BlobStore } from "../../lib/files/s3-blob-store.ts";
import { openStore } from "../../lib/store/index.ts";
import type { Store } from "../../lib/store/types.ts";
import { type SeaweedHandle, startSeaweed } from "../harness/seaweedfs.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { bytes, get, PDF, png, rawUpload } from "../support/uploads.ts";

let servers: Servers;
let seaweed: SeaweedHandle;
let cluster: TestCluster;
let objects: S3BlobStore;
let records: Store;
const gateways: string[] = [];

interface User {
  id: string;
  token: string;
  api: ApiClient;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  [servers, seaweed] = await Promise.all([startServers(), startSeaweed()]);
  cluster = await TestCluster.start(servers, { ...seaweed.env, UPLOAD_MAX_BYTES: String(40 * 1024 * 1024) });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  await cluster.add("chat-2", ["chat"]);
  for (const id of ["gw-1", "gw-2", "gw-3"]) gateways.push((await cluster.add(id, ["gateway"])).url);
  await Promise.all(gateways.map((url) => waitReady(url)));
  objects = await S3BlobStore.open(
    {
      endpoint: seaweed.endpoint,
      bucket: seaweed.bucket,
      region: seaweed.region,
      forcePathStyle: true,
    },
    { credentials: { accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey } },
  );
  records = await openStore({ mongoUrl: cluster.env.MONGO_URL, dataDir: cluster.env.DATA_DIR as string });
});

after(async () => {
  await records?.close();
  await objects?.close();
  await cluster?.stop();
  await Promise.all([servers?.stop(), seaweed?.stop()]);
});

async function user(g = 0): Promise<User> {
  const api = new ApiClient(gateways[g] as string);
  const res = await api.register(newUser("cf"));
  return { id: res.user.id, token: res.accessToken, api };
}

async function upload(g: number, u: User, name: string, body: Buffer): Promise<UploadView> {
  const res = await rawUpload(gateways[g] as string, u.token, name, [body], { contentLength: body.length });
  assert.equal(res.status, 201, `upload via gw-${g + 1}: ${res.status} ${res.body.toString()}`);
  return res.json<UploadView>();
}

async function send(g: number, u: User, chatId: string, message: string, attachmentIds: string[]) {
  const res = await fetch(`${gateways[g]}/chats/${chatId}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${u.token}`, "content-type": "application/json" },
    body: JSON.stringify({ message, clientMsgId: randomBytes(8).toString("hex"), attachmentIds }),
  });
  assert.equal(res.status, 201, `send via gw-${g + 1}`);
  return (await res.json()) as MessageView;
}

async function objectExists(key: string): Promise<boolean> {
  try {
    (await objects.get(key)).destroy();
    return true;
  } catch (err) {
    if (err instanceof BlobNotFoundError) return false;
    throw err;
  }
}

describe("attachments across nodes, files in SeaweedFS (S3)", () => {
  test("uploaded through one gateway, sent through another, read, ranged and thumbnailed through all", async () => {
    const [alice, bob, eve] = await Promise.all([user(0), user(1), user(2)]);
    const chat = await alice.api.openGroup("s3", [bob.id]);
    const image = await png(1000, 500);
    const view = await upload(0, alice, "wide.png", image);
    assert.deepEqual([view.contentType, view.width, view.height], ["image/png", 1000, 500]);
    assert.ok(await objectExists(view.id), "the object is in the bucket");

    const message = await send(1, alice, chat.id, "", [view.id]);
    assert.equal(message.attachments[0]?.id, view.id);
    for (let g = 0; g < 3; g++) {
      const down = await get(gateways[g] as string, `/files/${view.id}`, bob.token);
      assert.equal(down.status, 200, `gw-${g + 1}`);
      assert.equal(sha256(down.body), view.sha256, `gw-${g + 1}: the same bytes`);
      assert.equal((await get(gateways[g] as string, `/files/${view.id}`, eve.token)).status, 404);
    }
    const range = await get(gateways[2] as string, `/files/${view.id}`, bob.token, {
      range: "bytes=100-199",
    });
    assert.equal(range.status, 206);
    assert.ok(range.body.equals(image.subarray(100, 200)));
    assert.equal(range.headers["content-range"], `bytes 100-199/${image.length}`);

    const made = await get(gateways[1] as string, `/files/${view.id}?thumb=160`, bob.token);
    assert.equal(made.status, 200);
    assert.ok(await objectExists(`${view.id}.thumb160`), "kept in the bucket");
    const kept = await get(gateways[2] as string, `/files/${view.id}?thumb=160`, bob.token);
    assert.ok(kept.body.equals(made.body), "another gateway serves the stored one");

    await alice.api.deleteMessage(chat.id, message.id);
    for (let g = 0; g < 3; g++) {
      assert.equal((await get(gateways[g] as string, `/files/${view.id}`, bob.token)).status, 404);
    }
    assert.equal(await objectExists(view.id), false, "the object is removed");
    assert.equal(await objectExists(`${view.id}.thumb160`), false, "and its thumbnail");
  });

  test("a large file streams through a gateway to S3 and back; past the limit is 413 with no object", async () => {
    const alice = await user(1);
    const size = 30 * 1024 * 1024;
    const res = await rawUpload(gateways[1] as string, alice.token, "big.zip", zipLike(size), {
      contentLength: size,
    });
    assert.equal(res.status, 201, res.body.toString());
    const view = res.json<UploadView>();
    assert.equal(view.contentType, "application/zip");
    const expected = createHash("sha256");
    for (const chunk of zipLike(size)) expected.update(chunk);
    assert.equal(view.sha256, expected.digest("hex"));
    const down = await fetch(`${gateways[2]}/files/${view.id}`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const got = createHash("sha256");
    let length = 0;
    for await (const chunk of down.body as unknown as AsyncIterable<Uint8Array>) {
      got.update(chunk);
      length += chunk.length;
    }
    assert.equal(length, size);
    assert.equal(got.digest("hex"), view.sha256);

    const before = await records.collection("uploads").count({ ownerId: alice.id });
    const over = await rawUpload(gateways[0] as string, alice.token, "over.zip", zipLike(50 * 1024 * 1024));
    assert.equal(over.status, 413);
    assert.equal(over.json<{ error: { code: string } }>().error.code, "UPLOAD_TOO_LARGE");
    assert.equal(await records.collection("uploads").count({ ownerId: alice.id }), before, "no record left");
  });

  test("the object store going away mid-upload is a 503 with nothing left; once back, every gateway serves", async () => {
    const [alice, bob] = await Promise.all([user(0), user(0)]);
    const earlier = await upload(0, alice, "earlier.pdf", PDF);
    const chat = await alice.api.openGroup("outage", [bob.id]);
    await send(0, alice, chat.id, "", [earlier.id]);

    // A body that streams slowly: the store is killed after its first megabytes.
    let written = 0;
    async function* slow(): AsyncGenerator<Buffer> {
      for (const chunk of zipLike(20 * 1024 * 1024)) {
        written += chunk.length;
        if (written % (1024 * 1024) < chunk.length) await sleep(50);
        yield chunk;
      }
    }
    const uploading = rawUpload(gateways[1] as string, alice.token, "cut.zip", slow(), {
      contentLength: 20 * 1024 * 1024,
    });
    while (written < 2 * 1024 * 1024) await sleep(20);
    await seaweed.kill();
    const started = Date.now();
    const cut = await uploading;
    assert.equal(cut.status, 503, cut.body.toString());
    assert.equal(cut.json<{ error: { code: string } }>().error.code, "SERVICE_UNAVAILABLE");
    assert.ok(Date.now() - started < 60_000, "answered within a bounded time");
    const down = await rawUpload(gateways[2] as string, alice.token, "down.txt", [Buffer.from("while down")]);
    assert.equal(down.status, 503, "an upload while the store is down");
    const unreadable = await get(gateways[0] as string, `/files/${earlier.id}`, bob.token);
    assert.equal(unreadable.status, 503, "a download while the store is down");
    assert.equal(unreadable.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(unreadable.headers["content-disposition"], undefined, "a plain error, not a file");
    assert.equal(
      await records.collection("uploads").count({ ownerId: alice.id, state: { $ne: "ready" } }),
      0,
      "no pending or half record",
    );
    assert.equal(
      await records.collection("uploads").count({ ownerId: alice.id }),
      1,
      "only the earlier file",
    );
    // The platform itself stays up: everything but files works.
    const health = await fetch(`${gateways[0]}/health/ready`);
    assert.equal(health.status, 200);
    assert.equal((await alice.api.history(chat.id)).messages.length, 1);

    await seaweed.restart();
    for (let g = 0; g < 3; g++) {
      const deadline = Date.now() + 30_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = (await get(gateways[g] as string, `/files/${earlier.id}`, bob.token)).status;
        if (status !== 200) await sleep(250);
      }
      assert.equal(status, 200, `gw-${g + 1} serves the earlier file again`);
    }
    const again = await upload(2, alice, "after.txt", Buffer.from("the store is back"));
    assert.ok(await objectExists(again.id));
    const s3 = new S3Client({
      endpoint: seaweed.endpoint,
      region: seaweed.region,
      forcePathStyle: true,
      credentials: { accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey },
    });
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: seaweed.bucket }));
    s3.destroy();
    assert.deepEqual(open.Uploads ?? [], [], "no multipart upload is left open");
  });
});

/** A zip's signature, then `size` bytes in all, made as they are written (the same each time). */
function* zipLike(size: number): Generator<Buffer> {
  const header = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00]);
  yield header;
  yield* bytes(size - header.length, 0x5a);
}
