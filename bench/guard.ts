/**
 * Refuses every outgoing TCP connection that is not to the loopback interface. The bench runner
 * imports it first and passes it to every child with `--import`, so no benchmark process can reach
 * (or report anything to) the network, whatever a dependency tries.
 */
import net from "node:net";

const LOOPBACK_NAMES = new Set(["localhost", "::1", "::ffff:127.0.0.1"]);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The host a `socket.connect(...)` call aims at, or undefined for a Unix socket path. */
function hostOf(args: unknown[]): string | undefined {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === "object") {
    const options = first as { path?: string; host?: string };
    return options.path ? undefined : (options.host ?? "localhost");
  }
  if (typeof first === "string" && !/^\d+$/.test(first)) return undefined;
  return typeof args[1] === "string" ? args[1] : "localhost";
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  const host = hostOf(args);
  if (host !== undefined && !isLoopback(host)) {
    throw new Error(`bench: refused a connection to ${host}; benchmarks only talk to 127.0.0.1`);
  }
  return connect.apply(this, args as Parameters<typeof connect>);
} as typeof connect;
