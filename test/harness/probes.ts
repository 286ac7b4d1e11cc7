/** Readiness probes: each resolves once the server really answers, and rejects otherwise. */
import net from "node:net";
import { MongoClient } from "mongodb";

const PROBE_TIMEOUT_MS = 1_000;

/** Connects, optionally sends `request`, and checks the first line the server answers. */
export function expectLine(
  port: number,
  request: string | undefined,
  accept: (line: string) => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let received = "";
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => fail(new Error(`no answer on port ${port}`)));
    socket.on("error", fail);
    socket.on("close", () => fail(new Error(`port ${port} closed the connection`)));
    socket.on("connect", () => {
      if (request !== undefined) socket.write(request);
    });
    socket.on("data", (chunk) => {
      received += chunk.toString("utf8");
      const end = received.indexOf("\r\n");
      if (end === -1) return;
      const line = received.slice(0, end);
      socket.destroy();
      if (accept(line)) resolve();
      else reject(new Error(`unexpected answer on port ${port}: ${line.slice(0, 200)}`));
    });
  });
}

export async function mongoPing(url: string): Promise<void> {
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: PROBE_TIMEOUT_MS,
    connectTimeoutMS: PROBE_TIMEOUT_MS,
  });
  try {
    await client.db("admin").command({ ping: 1 });
  } finally {
    await client.close();
  }
}
