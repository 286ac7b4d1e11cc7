/**
 * Attachments on the embedded platform, files on disk under DATA_DIR/files: uploads (type found
 * from the bytes, names made safe, the size limit and the quota while streaming), downloads (who
 * may read, the headers that keep a browser from running a file, ranges, ETags, thumbnails),
 * messages that hold files over REST and the WebSocket, and files going when nothing holds them
 * (docs/api.md, "Files").
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { ApiClient } from "../../client/rest-client.ts";
import type { MessageView, UploadView } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { bytes, get, PDF, png, type RawAnswer, rawUpload, storedFiles } from "../support/uploads.ts";
import { RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;

interface User {
  api: ApiClient;
  id: string;
  token: string;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function user(platform: Platform): Promise<User> {
  const api = new ApiClient(platform.url);
  const res = await api.register(newUser("f"));
  return { api, id: res.user.id, token: res.accessToken };
}

async function upload(platform: Platform, u: User, name: string, body: Buffer): Promise<UploadView> {
  const res = await rawUpload(platform.url, u.token, name, [body], { contentLength: body.length });
  assert.equal(res.status, 201, `upload ${name}: ${res.status} ${res.body.toString()}`);
  return res.json<UploadView>();
}

function errorOf(res: RawAnswer): { code: string; details?: unknown } {
  return res.json<{ error: { code: string; details?: unknown } }>().error;
}

function fieldOf(res: RawAnswer): string | undefined {
  return (errorOf(res).details as { field: string }[] | undefined)?.[0]?.field;
}

async function send(
  u: User,
  chatId: string,
  message: string,
  attachmentIds?: string[],
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${u.api.baseUrl}/chats/${chatId}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${u.token}`, "content-type": "application/json" },
    body: JSON.stringify({ message, clientMsgId: randomBytes(8).toString("hex"), attachmentIds }),
  });
  return { status: res.status, body: await res.json() };
}

describe("attachments, embedded", () => {
  let platform: Platform;
  let filesDir: string;
  let alice: User;
  let bob: User;
  let carol: User;
  let chatId: string;
  const sockets: RawSocket[] = [];

  before(async () => {
    platform = await startEmbedded({ WS_RATE_LIMIT: "1000/10" });
    filesDir = path.join(platform.dataDir, "files");
    [alice, bob, carol] = await Promise.all([user(platform), user(platform), user(platform)]);
    chatId = (await alice.api.openGroup("files", [bob.id])).id;
  });
  after(async () => {
    for (const s of sockets) s.close();
    await platform.stop();
  });

  test("an image uploads with its type, size, digest and dimensions found from the bytes", async () => {
    const image = await png(640, 480);
    // The client says text/html; the bytes say PNG, and the bytes win.
    const res = await rawUpload(platform.url, alice.token, "photo.png", [image], {
      contentLength: image.length,
      headers: { "content-type": "text/html" },
    });
    assert.equal(res.status, 201, res.body.toString());
    const view = res.json<UploadView>();
    assert.equal(res.headers.location, `/files/${view.id}`);
    assert.deepEqual(
      {
        name: view.name,
        size: view.size,
        contentType: view.contentType,
        width: view.width,
        height: view.height,
      },
      { name: "photo.png", size: image.length, contentType: "image/png", width: 640, height: 480 },
    );
    assert.equal(view.sha256, sha256(image));
    assert.ok(!Number.isNaN(Date.parse(view.createdAt)));

    const down = await get(platform.url, `/files/${view.id}`, alice.token);
    assert.equal(down.status, 200);
    assert.ok(down.body.equals(image), "the same bytes come back");
    assert.equal(down.headers["content-type"], "image/png");
    assert.equal(down.headers["content-length"], String(image.length));
    assert.equal(down.headers["x-content-type-options"], "nosniff");
    assert.match(down.headers["cache-control"] ?? "", /^private\b/);
    assert.match(down.headers["content-disposition"] ?? "", /^inline; filename="photo.png"/);
    assert.equal(down.headers["accept-ranges"], "bytes");
    assert.match(String(down.headers["content-security-policy"]), /sandbox/);
    assert.equal(down.headers.etag, `"${view.sha256}"`);

    const again = await get(platform.url, `/files/${view.id}`, alice.token, {
      "if-none-match": `"${view.sha256}"`,
    });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);

    const head = await get(platform.url, `/files/${view.id}`, alice.token, {}, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], String(image.length));
    assert.equal(head.body.length, 0);
  });

  test("a download takes the token as ?access_token= (for <img> and <video>), and no token is 401", async () => {
    const view = await upload(platform, alice, "a.txt", Buffer.from("hello, files\n"));
    const byQuery = await get(
      platform.url,
      `/files/${view.id}?access_token=${encodeURIComponent(alice.token)}`,
    );
    assert.equal(byQuery.status, 200);
    assert.equal(byQuery.body.toString(), "hello, files\n");
    assert.equal(byQuery.headers["content-type"], "text/plain; charset=utf-8");
    assert.match(byQuery.headers["content-disposition"] ?? "", /^attachment; filename="a.txt"/);

    const none = await get(platform.url, `/files/${view.id}`);
    assert.equal(none.status, 401);
    assert.equal(none.headers["www-authenticate"], 'Bearer error="invalid_token"');
    const bad = await get(platform.url, `/files/${view.id}?access_token=not-a-token`);
    assert.equal(bad.status, 401);
    const upNoToken = await rawUpload(platform.url, undefined, "x.txt", [Buffer.from("x")]);
    assert.equal(upNoToken.status, 401);
  });

  test("a file is served to its uploader and to members of a chat whose message holds it, 404 to anyone else", async () => {
    const view = await upload(platform, alice, "report.pdf", PDF);
    assert.equal(view.contentType, "application/pdf");
    assert.equal(
      (await get(platform.url, `/files/${view.id}`, bob.token)).status,
      404,
      "not in a message yet",
    );

    const sent = await send(alice, chatId, "the report", [view.id]);
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const message = sent.body as MessageView;
    assert.deepEqual(message.attachments, [
      { id: view.id, name: "report.pdf", size: PDF.length, contentType: "application/pdf" },
    ]);

    const forBob = await get(platform.url, `/files/${view.id}`, bob.token);
    assert.equal(forBob.status, 200);
    assert.ok(forBob.body.equals(PDF));
    assert.match(forBob.headers["content-disposition"] ?? "", /^attachment; filename="report.pdf"/);
    const forCarol = await get(platform.url, `/files/${view.id}`, carol.token);
    assert.equal(forCarol.status, 404, "not a member");
    assert.equal(errorOf(forCarol).code, "FILE_NOT_FOUND");
    const unknown = await get(platform.url, `/files/${"x".repeat(22)}`, carol.token);
    assert.equal(unknown.status, 404, "unknown and forbidden look the same");
    assert.equal(errorOf(unknown).code, "FILE_NOT_FOUND");

    const history = await alice.api.history(chatId);
    assert.deepEqual(history.messages.find((m) => m.id === message.id)?.attachments, message.attachments);
  });

  test("a method a file route does not take is 405 with Allow, and the gateway goes on", async () => {
    const view = await upload(platform, alice, "m.txt", Buffer.from("methods"));
    for (const [method, path, allow] of [
      ["PUT", "/uploads", "POST, OPTIONS"],
      ["DELETE", "/uploads", "POST, OPTIONS"],
      ["DELETE", `/files/${view.id}`, "GET, HEAD, OPTIONS"],
      ["POST", `/files/${view.id}`, "GET, HEAD, OPTIONS"],
    ] as const) {
      const res = await fetch(`${platform.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${alice.token}` },
        body: method === "DELETE" ? undefined : "x",
      });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "METHOD_NOT_ALLOWED");
    }
    const trace = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${platform.url}/uploads?name=x`, { method: "TRACE" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(trace, 405);
    assert.equal((await get(platform.url, `/files/${view.id}`, alice.token)).status, 200);
  });

  test("markup is found in the bytes and refused: HTML sent as image/png, SVG with script", async () => {
    const before = await storedFiles(filesDir);
    const html = await rawUpload(
      platform.url,
      alice.token,
      "cat.png",
      [Buffer.from("<!DOCTYPE html><html><script>alert(1)</script></html>")],
      { headers: { "content-type": "image/png" } },
    );
    assert.equal(html.status, 415);
    assert.deepEqual(errorOf(html), {
      ...errorOf(html),
      code: "UPLOAD_TYPE_NOT_ALLOWED",
      details: { contentType: "text/html" },
    });
    const svg = await rawUpload(platform.url, alice.token, "logo.svg", [
      Buffer.from(
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
      ),
    ]);
    assert.equal(svg.status, 415);
    assert.deepEqual(errorOf(svg).details, { contentType: "image/svg+xml" });
    const exe = await rawUpload(platform.url, alice.token, "a.bin", [
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0]),
    ]);
    assert.equal(exe.status, 415);
    const after = await storedFiles(filesDir);
    assert.deepEqual(after, before, "nothing was stored");
  });

  test("names are made safe: no folders, control or format characters; none left is 422", async () => {
    const cases: [string, string][] = [
      ["../../etc/passwd.txt", "passwd.txt"],
      ["C:\\Users\\me\\notes.txt", "notes.txt"],
      ["bad\u0000na\u0007me\u202Etxt.exe.txt", "badnametxt.exe.txt"],
      ["  spaced \t\n name .txt ", "spaced name .txt"],
      ["...hidden.txt", "hidden.txt"],
      [`${"é".repeat(300)}.txt`, `${"é".repeat(125)}.txt`],
    ];
    for (const [given, kept] of cases) {
      const view = await upload(platform, alice, given, Buffer.from("text"));
      assert.equal(view.name, kept, JSON.stringify(given));
      assert.ok(Buffer.byteLength(view.name) <= 255);
    }
    for (const name of [undefined, "", "../", "\u0001\u0002", "..."]) {
      const res = await rawUpload(platform.url, alice.token, name, [Buffer.from("text")]);
      assert.equal(res.status, 422, `${JSON.stringify(name)}: ${res.body.toString()}`);
      assert.equal(fieldOf(res), "name");
    }
    const empty = await rawUpload(platform.url, alice.token, "empty.txt", [], { contentLength: 0 });
    assert.equal(empty.status, 422);
    assert.equal(fieldOf(empty), "body");
    const download = await upload(platform, alice, 'quote"and;semi.txt', Buffer.from("q"));
    const res = await get(platform.url, `/files/${download.id}`, alice.token);
    assert.equal(
      res.headers["content-disposition"],
      `attachment; filename="quote_and;semi.txt"; filename*=UTF-8''quote%22and%3Bsemi.txt`,
    );
  });

  test("ranges: one range is 206, past the end 416, malformed or several ranges the whole file", async () => {
    const body = Buffer.from("0123456789abcdefghij");
    const view = await upload(platform, alice, "r.txt", body);
    const at = (range: string) => get(platform.url, `/files/${view.id}`, alice.token, { range });
    const first = await at("bytes=0-9");
    assert.equal(first.status, 206);
    assert.equal(first.body.toString(), "0123456789");
    assert.equal(first.headers["content-range"], "bytes 0-9/20");
    assert.equal(first.headers["content-length"], "10");
    const tail = await at("bytes=15-");
    assert.equal(tail.body.toString(), "fghij");
    assert.equal(tail.headers["content-range"], "bytes 15-19/20");
    const suffix = await at("bytes=-3");
    assert.equal(suffix.body.toString(), "hij");
    const over = await at("bytes=5-1000");
    assert.equal(over.status, 206);
    assert.equal(over.headers["content-range"], "bytes 5-19/20");
    for (const range of ["bytes=20-", "bytes=25-30"]) {
      const past = await at(range);
      assert.equal(past.status, 416, range);
      assert.equal(past.headers["content-range"], "bytes */20");
    }
    for (const range of ["bytes=abc", "items=0-1", "bytes=5-2", "bytes=0-1,4-5", "bytes"]) {
      const whole = await at(range);
      assert.equal(whole.status, 200, range);
      assert.ok(whole.body.equals(body), range);
    }
  });

  test("thumbnails of images are WebP at most N px, made once; other files and sizes are 422", async () => {
    const view = await upload(platform, alice, "big.png", await png(1200, 900));
    const thumb = await get(platform.url, `/files/${view.id}?thumb=320`, alice.token);
    assert.equal(thumb.status, 200, thumb.body.toString());
    assert.equal(thumb.headers["content-type"], "image/webp");
    const meta = await sharp(thumb.body).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["webp", 320, 240]);
    const stored = (await storedFiles(filesDir)).files.filter((f) => f.endsWith(`${view.id}.thumb320`));
    assert.equal(stored.length, 1, "kept beside the file");
    const again = await get(platform.url, `/files/${view.id}?thumb=320`, alice.token);
    assert.ok(again.body.equals(thumb.body));

    const text = await upload(platform, alice, "t.txt", Buffer.from("text"));
    const notImage = await get(platform.url, `/files/${text.id}?thumb=320`, alice.token);
    assert.equal(notImage.status, 422);
    assert.equal(fieldOf(notImage), "thumb");
    const odd = await get(platform.url, `/files/${view.id}?thumb=123`, alice.token);
    assert.equal(odd.status, 422);
    assert.equal((await get(platform.url, `/files/${view.id}?thumb=320`, carol.token)).status, 404);
  });

  test("a message takes up to 10 of the sender's own uploads, with or without text", async () => {
    const mine = await upload(platform, alice, "m.txt", Buffer.from("mine"));
    const theirs = await upload(platform, bob, "b.txt", Buffer.from("bob's"));

    const onlyFile = await send(alice, chatId, "", [mine.id]);
    assert.equal(onlyFile.status, 201, JSON.stringify(onlyFile.body));
    assert.equal((onlyFile.body as MessageView).message, "");
    assert.equal((onlyFile.body as MessageView).attachments.length, 1);

    const blank = await send(alice, chatId, "");
    assert.equal(blank.status, 422);
    const spaces = await send(alice, chatId, "   ", [mine.id]);
    assert.equal(spaces.status, 422, "text given is still not blank");

    for (const [ids, what] of [
      [[theirs.id], "someone else's upload"],
      [["A".repeat(22)], "an unknown id"],
      [[mine.id, mine.id], "the same id twice"],
      [Array.from({ length: 11 }, () => mine.id), "eleven ids"],
      [[], "an empty list"],
    ] as [string[], string][]) {
      const res = await send(alice, chatId, "x", ids);
      assert.equal(res.status, 422, `${what}: ${JSON.stringify(res.body)}`);
      const details = (res.body as { error: { details: { field: string }[] } }).error.details;
      assert.ok(
        details.some((d) => d.field === "attachmentIds"),
        what,
      );
    }
    const plain = await send(alice, chatId, "plain");
    assert.deepEqual((plain.body as MessageView).attachments, [], "always present");

    const ten = await Promise.all(
      Array.from({ length: 10 }, (_, i) => upload(platform, alice, `${i}.txt`, Buffer.from(`${i}`))),
    );
    const many = await send(
      alice,
      chatId,
      "ten",
      ten.map((t) => t.id),
    );
    assert.equal(many.status, 201);
    assert.deepEqual(
      (many.body as MessageView).attachments.map((a) => a.name),
      ten.map((t) => t.name),
      "in the order given",
    );
  });

  test("over the WebSocket, send_message takes attachmentIds and new_message carries the files", async () => {
    const view = await upload(platform, alice, "ws.png", await png(64, 32));
    const wsUrl = `${platform.url.replace("http", "ws")}/ws`;
    const a = new RawSocket(wsUrl, { token: alice.token });
    const b = new RawSocket(wsUrl, { token: bob.token });
    sockets.push(a, b);
    await Promise.all([a.next((f) => f.type === "ready"), b.next((f) => f.type === "ready")]);
    a.send({ type: "send_message", chatId, message: "", clientMsgId: "ws-file-1", attachmentIds: [view.id] });
    const ack = await a.next((f) => f.type === "ack" && f.clientMsgId === "ws-file-1");
    const pushed = await b.next((f) => f.type === "new_message" && f.id === ack.messageId);
    assert.deepEqual(pushed.attachments, [
      { id: view.id, name: "ws.png", size: view.size, contentType: "image/png", width: 64, height: 32 },
    ]);
    a.send({ type: "send_message", chatId, message: "", clientMsgId: "ws-file-2" });
    const refused = await a.next((f) => f.type === "error" && f.ref === "ws-file-2");
    assert.equal(refused.code, "INVALID_FRAME");
    a.send({
      type: "send_message",
      chatId,
      message: "x",
      clientMsgId: "ws-file-3",
      attachmentIds: ["A".repeat(22)],
    });
    const unknown = await a.next((f) => f.type === "error" && f.ref === "ws-file-3");
    assert.equal(unknown.code, "VALIDATION_FAILED");
  });

  test("a deleted message's files stop being served at once, and go once no live message holds them", async () => {
    const shared = await upload(platform, alice, "shared.txt", Buffer.from("shared"));
    const single = await upload(platform, alice, "single.txt", Buffer.from("single"));
    const first = (await send(alice, chatId, "one", [shared.id, single.id])).body as MessageView;
    const second = (await send(alice, chatId, "two", [shared.id])).body as MessageView;
    const onDisk = async (id: string) => (await storedFiles(filesDir)).files.some((f) => f.endsWith(id));
    assert.ok((await onDisk(shared.id)) && (await onDisk(single.id)));

    await alice.api.deleteMessage(chatId, first.id);
    const history = await alice.api.history(chatId);
    assert.deepEqual(history.messages.find((m) => m.id === first.id)?.attachments, []);
    for (const u of [alice, bob])
      assert.equal((await get(platform.url, `/files/${single.id}`, u.token)).status, 404);
    assert.equal(await onDisk(single.id), false, "its bytes are removed");
    assert.equal(
      (await get(platform.url, `/files/${shared.id}`, bob.token)).status,
      200,
      "still in another message",
    );

    await alice.api.deleteMessage(chatId, second.id);
    assert.equal((await get(platform.url, `/files/${shared.id}`, bob.token)).status, 404);
    assert.equal((await get(platform.url, `/files/${shared.id}`, alice.token)).status, 404);
    assert.equal(await onDisk(shared.id), false);
    const reuse = await send(alice, chatId, "again", [shared.id]);
    assert.equal(reuse.status, 422, "a removed upload cannot be attached");
  });
});

describe("attachments: limits, quota and orphans", () => {
  let platform: Platform;
  let filesDir: string;
  let alice: User;

  before(async () => {
    platform = await startEmbedded({
      UPLOAD_MAX_BYTES: "100000",
      UPLOAD_QUOTA_BYTES: "250000",
      UPLOAD_ORPHAN_TTL_S: "2",
    });
    filesDir = path.join(platform.dataDir, "files");
    alice = await user(platform);
  });
  after(() => platform.stop());

  test("a declared length over the limit is 413 before a byte is read", async () => {
    const res = await rawUpload(platform.url, alice.token, "big.txt", bytes(5_000_000), {
      contentLength: 5_000_000,
    });
    assert.equal(res.status, 413);
    assert.deepEqual(errorOf(res), {
      ...errorOf(res),
      code: "UPLOAD_TOO_LARGE",
      details: { maxBytes: 100000 },
    });
    assert.equal(res.headers.connection, "close");
    assert.ok(res.sentBytes < 5_000_000, `the client stopped early (${res.sentBytes} bytes written)`);
  });

  test("a streamed body over the limit is 413 while streaming, and leaves no file behind", async () => {
    const res = await rawUpload(platform.url, alice.token, "big.txt", bytes(20_000_000));
    assert.equal(res.status, 413, res.body.toString());
    assert.equal(errorOf(res).code, "UPLOAD_TOO_LARGE");
    assert.ok(res.sentBytes < 20_000_000, `the gateway stopped reading (${res.sentBytes} bytes written)`);
    await sleep(200);
    assert.deepEqual((await storedFiles(filesDir)).temps, []);
    // The gateway goes on serving.
    const ok = await rawUpload(platform.url, alice.token, "ok.txt", [Buffer.from("fine")]);
    assert.equal(ok.status, 201);
  });

  test("the quota counts stored bytes: past it is 413 UPLOAD_QUOTA_EXCEEDED, and freed bytes count again", async () => {
    const bob = await user(platform);
    const chunk = Buffer.alloc(90_000, 0x62);
    const a = await upload(platform, bob, "1.txt", chunk);
    await upload(platform, bob, "2.txt", chunk);
    const third = await rawUpload(platform.url, bob.token, "3.txt", [chunk], { contentLength: chunk.length });
    assert.equal(third.status, 413);
    assert.equal(errorOf(third).code, "UPLOAD_QUOTA_EXCEEDED");
    const streamed = await rawUpload(platform.url, bob.token, "3.txt", [chunk]);
    assert.equal(streamed.status, 413, "unknown length: refused while streaming");
    assert.equal(errorOf(streamed).code, "UPLOAD_QUOTA_EXCEEDED");
    assert.deepEqual((await storedFiles(filesDir)).temps, []);

    // Attached and deleted, the first one's bytes leave the quota.
    const chat = await bob.api.openGroup("q", []);
    const sent = (await send(bob, chat.id, "", [a.id])).body as MessageView;
    await bob.api.deleteMessage(chat.id, sent.id);
    await upload(platform, bob, "3.txt", chunk);
  });

  test("an upload never attached goes after UPLOAD_ORPHAN_TTL_S; an attached one stays", async () => {
    const orphan = await upload(platform, alice, "orphan.txt", Buffer.from("alone"));
    const kept = await upload(platform, alice, "kept.txt", Buffer.from("held"));
    const chat = await alice.api.openGroup("o", []);
    assert.equal((await send(alice, chat.id, "", [kept.id])).status, 201);
    const deadline = Date.now() + 15_000;
    while ((await get(platform.url, `/files/${orphan.id}`, alice.token)).status === 200) {
      assert.ok(Date.now() < deadline, "the orphan was not swept in time");
      await sleep(250);
    }
    assert.equal((await get(platform.url, `/files/${orphan.id}`, alice.token)).status, 404);
    assert.equal(
      (await storedFiles(filesDir)).files.some((f) => f.endsWith(orphan.id)),
      false,
    );
    assert.equal((await get(platform.url, `/files/${kept.id}`, alice.token)).status, 200);
    const late = await send(alice, chat.id, "", [orphan.id]);
    assert.equal(late.status, 422, "a swept upload cannot be attached");
  });
});
