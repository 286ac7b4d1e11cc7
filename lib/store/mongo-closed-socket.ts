/**
 * A fix for the MongoDB driver (7.9): a command written to a connection whose socket is already
 * destroyed waits forever. When the server goes away (killed, restarted), Node destroys the
 * socket at once but emits its 'close' event, which is what marks the driver's connection closed,
 * only on a later turn of the event loop. A command started in between, on a pooled connection or
 * by the server monitor's next check, passes the driver's `closed` check, writes to the destroyed
 * socket (the write returns false) and then waits for a 'drain' that a destroyed socket never
 * emits; no socket timeout fires on it either. The pooled operation never settles and keeps its
 * connection checked out; a monitor that hangs so never checks the server again, and every later
 * operation of that client fails server selection with the error of the connection lost before.
 * Both were seen in the store-outage test: a chat node whose sends never settled after a restart
 * of FerretDB, and one whose store never became reachable again (docs/resilience.md).
 *
 * The fix wraps the driver's `Connection.writeCommand`: on a destroyed socket it fails the
 * connection with a network error, as the 'close' event would have, so the operation fails (and
 * is retried by its caller) and the monitor's check fails and runs again; a write still waiting
 * when the socket's 'close' comes fails the same way. It is applied once per process when the
 * MongoDB store is loaded. `mongo-closed-socket.test.ts` shows the hang on the driver as installed
 * and its end with the fix, so a driver upgrade that fixes it (or changes the internals this
 * wraps) fails that test instead of passing unnoticed.
 */
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { MongoNetworkError } from "mongodb";

/** The part of the driver's internal Connection class the fix relies on. */
export interface DriverConnection {
  readonly socket: Socket;
  readonly id: unknown;
  readonly address: string;
  onError(err: Error): void;
  writeCommand(...args: unknown[]): Promise<void>;
}

const FIXED = Symbol.for("social.mongoClosedSocketFix");

/** The prototype of the driver's Connection class (internal: `mongodb/lib/cmap/connection.js`). */
export function driverConnectionPrototype(): DriverConnection {
  const require = createRequire(import.meta.url);
  const { Connection } = require("mongodb/lib/cmap/connection.js") as {
    Connection: { prototype: DriverConnection };
  };
  return Connection.prototype;
}

/** Whether the fix is in place on the driver's Connection class. */
export function isFixApplied(proto: DriverConnection = driverConnectionPrototype()): boolean {
  return (proto as DriverConnection & { [FIXED]?: true })[FIXED] === true;
}

/**
 * Applies the fix to the driver's Connection class; true once it is in place. False when the
 * driver no longer has the method it wraps (its test then fails).
 */
export function fixClosedSocketWrites(proto: DriverConnection = driverConnectionPrototype()): boolean {
  const target = proto as DriverConnection & { [FIXED]?: true };
  if (target[FIXED]) return true;
  const writeCommand = target.writeCommand;
  if (typeof writeCommand !== "function") return false;
  target.writeCommand = function (this: DriverConnection, ...args: unknown[]): Promise<void> {
    const socket = this.socket;
    const closed = () => new MongoNetworkError(`connection ${String(this.id)} to ${this.address} closed`);
    if (socket.destroyed) {
      const err = closed();
      this.onError(err);
      return Promise.reject(err);
    }
    // Destroyed during the write (it awaits the command's serialisation, which compression makes
    // truly asynchronous): its 'close' event is still to come, and ends the wait.
    return new Promise<void>((resolve, reject) => {
      const onClose = () => reject(closed());
      socket.once("close", onClose);
      writeCommand.apply(this, args).then(
        () => {
          socket.off("close", onClose);
          resolve();
        },
        (err: unknown) => {
          socket.off("close", onClose);
          reject(err);
        },
      );
    });
  };
  target[FIXED] = true;
  return true;
}
