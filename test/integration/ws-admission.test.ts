/**
 * A gateway bounds the WebSocket frames it works on at once (WS_MAX_FRAMES_IN_PROGRESS): beyond it
 * the sockets that send more are not read until half are done, so an overload waits in the
 * clients' TCP buffers instead of in the gateway's event loop. Nothing is refused or lost, and a
 * socket whose reading was paused is not taken for dead by the heartbeat.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { FrameAdmission, Pausable } from "../../gateway/frame-admission.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { wsTap } from "../support/ws-tap.ts";

const MAX = 3;
const USERS = 8;
const SENDS_EACH = 10;

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;

before(async () => {
  platform = await startEmbedded({ WS_MAX_FRAMES_IN_PROGRESS: String(MAX), WS_HEARTBEAT_MS: "100" });
});
after(() => platform?.stop());

test("frames beyond the gateway's bound wait unread, then are all handled; no socket is dropped", async () => {
  const apis: ApiClient[] = [];
  const ids: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const api = new ApiClient(platform.url);
    ids.push((await api.register(newUser(`adm${i}`))).user.id);
    apis.push(api);
  }
  const [owner] = apis as [ApiClient];
  const chat = await owner.request<ChatView>("POST", "/chats", {
    type: "group",
    name: "bounded",
    memberIds: ids.slice(1),
  });

  // What the gateway's admission does, seen from the inside.
  const gateway = platform.broker.getLocalService("gateway") as unknown as {
    ws: { admission: FrameAdmission };
  };
  const admission = gateway.ws.admission;
  const admit = admission.admit.bind(admission);
  let pauses = 0;
  admission.admit = (connection: Pausable) => {
    const was = admission.isPaused(connection);
    admit(connection);
    if (!was && admission.isPaused(connection)) pauses += 1;
  };

  const tap = wsTap();
  const sockets = apis.map(
    (api) => new ChatSocket(api, { WebSocketImpl: tap.WebSocketImpl, ackTimeoutMs: 30_000 }),
  );
  await Promise.all(sockets.map((s) => s.connect()));
  // Frames that came in one read are all handled (pausing stops the next reads); the bound is
  // reached, so sockets are paused, and each must be read again for the next round to be acked.
  const burst = (round: number) =>
    Promise.all(
      sockets.flatMap((s, u) =>
        Array.from({ length: SENDS_EACH }, (_, i) =>
          s.send({ chatId: chat.id }, `r${round} u${u} m${i}`, `r${round}-u${u}-m${i}`),
        ),
      ),
    );
  const acks = [...(await burst(1)), ...(await burst(2))];
  // Long enough for several heartbeat ticks after the bursts.
  await new Promise((r) => setTimeout(r, 500));
  for (const s of sockets) s.close();

  assert.ok(pauses > 0, "some sockets were paused");
  assert.equal(admission.inProgress, 0, "every admitted frame was counted done");
  assert.equal(acks.length, 2 * USERS * SENDS_EACH);
  assert.deepEqual(
    tap.frames.filter((f) => f.type === "error"),
    [],
    "nothing was refused",
  );
  assert.deepEqual(tap.closeCodes, [], "no socket was closed by the gateway");
  const page = await owner.request<{ messages: MessageView[] }>(
    "GET",
    `/chats/${chat.id}/messages?limit=200`,
  );
  assert.deepEqual(
    page.messages.map((m) => m.seq),
    Array.from({ length: 2 * USERS * SENDS_EACH }, (_, i) => i + 1),
    "every send stored once, seqs without a gap",
  );
});
