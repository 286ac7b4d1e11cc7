/**
 * A fake of the platform for the SDK's unit tests: a fetch that records every request (method,
 * path, body) and answers from routes the test gives, and a WebSocket the test pushes frames into.
 */
import type { MessageView } from "../../../client/types.ts";

export interface Recorded {
  method: string;
  path: string;
  body: unknown;
}

/** A route's answer: a status and an optional JSON body (204 when nothing is given). */
export type Answer = { status?: number; body?: unknown };
type Route = (req: Recorded, url: URL) => Answer | undefined;

export const BASE = "http://api.test";
const LOGIN = { accessToken: "t", refreshToken: "r", expiresIn: 900, user: { id: "me" } };

/** A fetch that answers `POST /auth/login` and then the routes, in order; 404 when none matches. */
export function fakeFetch(...routes: Route[]): { fetch: typeof fetch; calls: Recorded[] } {
  const calls: Recorded[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const text = typeof init?.body === "string" ? init.body : undefined;
    const req: Recorded = {
      method: init?.method ?? "GET",
      path: url.pathname + url.search,
      body: text === undefined ? undefined : JSON.parse(text),
    };
    let answer: Answer | undefined;
    if (req.method === "POST" && url.pathname === "/auth/login") answer = { status: 200, body: LOGIN };
    else {
      calls.push(req);
      for (const route of routes) {
        answer = route(req, url);
        if (answer) break;
      }
    }
    answer ??= { status: 404, body: { error: { code: "NOT_FOUND", message: "no route" } } };
    const status = answer.status ?? (answer.body === undefined ? 204 : 200);
    if (answer.body === undefined) return new Response(null, { status });
    return new Response(JSON.stringify(answer.body), {
      status,
      headers: { "content-type": "application/json" },
    });
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

/** Answers `method path` (exact, query included) with `answer`. */
export function on(method: string, path: string, answer: Answer): Route {
  return (req) => (req.method === method && req.path === path ? answer : undefined);
}

/** Answers every request with 204, as the server does the idempotent PUTs and DELETEs. */
export const noContent: Route = () => ({ status: 204 });

export function message(seq: number, senderId = "u2", chatId = "c1"): MessageView {
  return {
    id: `${chatId}_${seq}`,
    chatId,
    seq,
    senderId,
    message: `m${seq}`,
    clientMsgId: `x${seq}`,
    createdAt: "2030-01-01T00:00:00.000Z",
    reactions: [],
    mentions: [],
    attachments: [],
  };
}

/** A WebSocket stand-in: open at once, says `ready`, records what the client sends. */
export class FakeWebSocket {
  static last: FakeWebSocket | undefined;
  readyState = 1;
  readonly sent: Record<string, unknown>[] = [];
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(_url: string, _protocols?: string[]) {
    FakeWebSocket.last = this;
    queueMicrotask(() => this.push({ type: "ready", userId: "me", connectionId: "c" }));
  }

  /** A frame from the server. */
  push(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code = 1000): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}
