/**
 * Where every broker of the process writes its log lines: standard output, asynchronously, through
 * one bounded buffer. Pino's default destination writes synchronously, and when stdout is a pipe
 * whose reader falls behind (a log collector, a parent process under load) each write waits, in
 * 100 ms sleeps, until the pipe takes it: the event loop stops, timers with it, and a node that
 * logs a burst of warnings (a timed-out call each, in an overload) stops sending its bus
 * heartbeats and is taken for dead. Here a write never waits; beyond MAX_BUFFERED_BYTES not yet
 * taken by the pipe, lines are dropped and counted, and the count is written once the pipe drains.
 */
import pino from "pino";

/** Unwritten log bytes a process keeps before it drops lines. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

type Destination = ReturnType<typeof pino.destination>;

let shared: Destination | undefined;

export function logDestination(): Destination {
  if (shared) return shared;
  const destination = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_BYTES });
  let dropped = 0;
  destination.on("drop", () => {
    dropped += 1;
  });
  destination.on("drain", () => {
    if (dropped === 0) return;
    const line = {
      level: 40,
      time: Date.now(),
      msg: `${dropped} log lines dropped: standard output fell behind`,
    };
    dropped = 0;
    destination.write(`${JSON.stringify(line)}\n`);
  });
  // What is still buffered at exit is written before the process ends.
  process.once("exit", () => {
    try {
      destination.flushSync();
    } catch {
      // The pipe is gone or still full: those lines are lost with the process.
    }
  });
  shared = destination;
  return destination;
}
