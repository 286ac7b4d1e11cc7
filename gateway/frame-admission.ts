/**
 * A gateway's bound on the WebSocket frames it works on at once. At `max` frames received and not
 * yet handled, each connection that sends another one stops being read: its socket is paused, so
 * the kernel, and then TCP, hold that client's next frames. Once the count is down to half of
 * `max`, every paused connection is read again.
 *
 * Refusing the extra frames would not do: reading, parsing and answering each one is the load.
 * Node runs timers only between rounds of I/O and the work they queue; a gateway 4 times over its
 * capacity ran none for up to 12 s, working through its bus backlog (now bounded by the chat nodes'
 * outbox, delivery-outbox.ts) and its clients' frames (bounded here), so it sent no bus heartbeat
 * and the other nodes took it for dead. A paused socket is not read, and adds no work.
 */
export interface Pausable {
  pauseReading(): void;
  resumeReading(): void;
}

export class FrameAdmission {
  readonly max: number;
  private working = 0;
  private readonly paused = new Set<Pausable>();
  private readonly onChange: ((pausedConnections: number, working: number) => void) | undefined;

  /** `onChange` hears when connections start being paused, and when they are all read again. */
  constructor(max: number, onChange?: (pausedConnections: number, working: number) => void) {
    this.max = max;
    this.onChange = onChange;
  }

  /** A frame from this connection is being handled; it pauses the connection when at the bound. */
  admit(connection: Pausable): void {
    this.working += 1;
    if (this.working < this.max || this.paused.has(connection)) return;
    connection.pauseReading();
    this.paused.add(connection);
    if (this.paused.size === 1) this.onChange?.(1, this.working);
  }

  /** A frame admitted before has been handled. */
  done(): void {
    this.working -= 1;
    if (this.paused.size === 0 || this.working > this.max / 2) return;
    const resumed = this.paused.size;
    for (const connection of this.paused) connection.resumeReading();
    this.paused.clear();
    this.onChange?.(0, resumed);
  }

  /** A connection that closed is not resumed. */
  forget(connection: Pausable): void {
    this.paused.delete(connection);
  }

  get inProgress(): number {
    return this.working;
  }

  isPaused(connection: Pausable): boolean {
    return this.paused.has(connection);
  }
}
