/**
 * The benchmark's client of Centrifugo (bench/servers/centrifugo.ts), as light as the frames the
 * bare target takes: one `ws` socket speaking Centrifugo's JSON protocol at
 * /connection/websocket. `connect` sends `{"id":1,"connect":{"token"}}`, then subscribes to the
 * user's group channel and is ready at that reply; `send` publishes `{clientMsgId, senderId,
 * message}` into it and resolves on the publish reply (the ack); every push of a publication on
 * the channel goes to `onMessage` (the sender's own too: drive.ts skips it, as it does the
 * platform's). Replies may come several to a frame, one JSON a line; an empty object is the
 * server's ping, answered `{}`. A socket that closes after it was ready fails what it had in flight
 * and opens again by itself, as ChatSocket does.
 */
import WS from "ws";
import type { MessageView } from "../../lib/contracts.ts";
import { CENTRIFUGO_NAMESPACE } from "../servers/centrifugo.ts";

type Delivered = Pick<MessageView, "clientMsgId" | "senderId">;

interface Reply {
  id?: number;
  error?: { code: number; message: string };
  push?: { channel?: string; pub?: { data?: Delivered } };
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export interface CentrifugoSocketOptions {
  onMessage(m: Delivered): void;
  onStateChange?(state: "connecting" | "open" | "closed"): void;
}

const RECONNECT_MS = 500;

export class CentrifugoSocket {
  private socket: WS | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private readonly channel: string;
  private opened: Promise<void> | undefined;
  private readonly url: string;
  private readonly token: string;
  private readonly userId: string;
  private readonly o: CentrifugoSocketOptions;

  constructor(url: string, token: string, userId: string, chatId: string, o: CentrifugoSocketOptions) {
    this.url = url;
    this.token = token;
    this.userId = userId;
    this.channel = `${CENTRIFUGO_NAMESPACE}:${chatId}`;
    this.o = o;
  }

  connect(): Promise<void> {
    this.opened ??= this.open();
    return this.opened;
  }

  send(target: { chatId: string }, message: string, clientMsgId: string): Promise<void> {
    const data: Delivered & { message: string } = { clientMsgId, senderId: this.userId, message };
    const channel = `${CENTRIFUGO_NAMESPACE}:${target.chatId}`;
    return this.command("publish", { channel, data });
  }

  close(): void {
    this.closed = true;
    this.socket?.close();
  }

  private async open(): Promise<void> {
    this.o.onStateChange?.("connecting");
    const socket = new WS(this.url, { perMessageDeflate: false });
    this.socket = socket;
    socket.on("message", (data) => this.onFrame(String(data)));
    socket.on("error", () => socket.terminate());
    let ready = false;
    socket.on("close", () => {
      const err = new Error("socket closed");
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (!ready) return;
      this.o.onStateChange?.("closed");
      if (!this.closed) setTimeout(() => void this.open().catch(() => undefined), RECONNECT_MS).unref();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("close", () => reject(new Error("closed before it opened")));
    });
    await this.command("connect", { token: this.token });
    await this.command("subscribe", { channel: this.channel });
    if (this.closed) socket.close();
    ready = true;
    this.o.onStateChange?.("open");
  }

  private command(name: "connect" | "subscribe" | "publish", body: object): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WS.OPEN) return Promise.reject(new Error("not connected"));
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      socket.send(`{"id":${id},"${name}":${JSON.stringify(body)}}`);
    });
  }

  private onFrame(text: string): void {
    for (const line of text.split("\n")) {
      if (line === "{}") {
        this.socket?.send("{}");
        continue;
      }
      if (!line) continue;
      const reply = JSON.parse(line) as Reply;
      if (reply.id !== undefined) {
        const p = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (reply.error)
          p?.reject(Object.assign(new Error(reply.error.message), { code: String(reply.error.code) }));
        else p?.resolve();
      } else if (reply.push?.pub?.data) {
        this.o.onMessage(reply.push.pub.data);
      }
    }
  }
}
