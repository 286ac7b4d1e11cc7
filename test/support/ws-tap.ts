/**
 * A WebSocket class for ChatSocket's `WebSocketImpl` option that lets a test see what the client
 * library itself hides: every frame the server sent (error frames it retries on its own) and every
 * close code (1001 from a gateway going away). The socket behaves exactly like the global one.
 */
export interface WsTap {
  frames: ({ type: string } & Record<string, unknown>)[];
  closeCodes: number[];
  WebSocketImpl: typeof WebSocket;
}

export function wsTap(): WsTap {
  const tap: WsTap = { frames: [], closeCodes: [], WebSocketImpl: WebSocket };
  class TappedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener("message", (event) => {
        try {
          tap.frames.push(JSON.parse(String(event.data)));
        } catch {
          // Not JSON: the client library ignores it as well.
        }
      });
      this.addEventListener("close", (event) => tap.closeCodes.push(event.code));
    }
  }
  tap.WebSocketImpl = TappedWebSocket as unknown as typeof WebSocket;
  return tap;
}
