import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameError, parseFrame } from "../../../gateway/ws-frames.ts";

test("a frame with __proto__, constructor or prototype as a key is refused as an unknown field", () => {
  for (const text of [
    '{"type":"resume","chats":{"constructor":1}}',
    '{"type":"read","chatId":"c1","seq":1,"__proto__":{"seq":2}}',
    '{"type":"send_message","chatId":"c1","message":"hi","clientMsgId":"m1","prototype":{}}',
  ]) {
    assert.throws(
      () => parseFrame(text),
      (err: unknown) => err instanceof FrameError && /Unknown field/.test(err.message),
      text,
    );
  }
  assert.deepEqual(parseFrame('{"type":"resume","chats":{"c1":3}}'), { type: "resume", chats: { c1: 3 } });
});

test("send_message takes a replyTo id, and refuses one that is not an id", () => {
  assert.deepEqual(
    parseFrame('{"type":"send_message","chatId":"c1","message":"hi","clientMsgId":"m1","replyTo":"c1_3"}'),
    {
      type: "send_message",
      chatId: "c1",
      message: "hi",
      clientMsgId: "m1",
      replyTo: "c1_3",
    },
  );
  for (const replyTo of ['""', "3", '"a b"', "null", '{"id":"x"}']) {
    assert.throws(
      () =>
        parseFrame(
          `{"type":"send_message","chatId":"c1","message":"hi","clientMsgId":"m1","replyTo":${replyTo}}`,
        ),
      (err: unknown) => err instanceof FrameError && err.code === "INVALID_FRAME" && err.ref === "m1",
      replyTo,
    );
  }
});
