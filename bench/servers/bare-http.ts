/** Baseline A: a bare node:http server answering a small JSON body, on a free port of 127.0.0.1. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { announce, stopOnRequest } from "../child.ts";

const BODY = JSON.stringify({ hello: "world" });

const server = http.createServer((_req, res) => {
  res.writeHead(200, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(BODY),
  });
  res.end(BODY);
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  announce("ready", { url: `http://127.0.0.1:${port}`, path: "/" });
});

stopOnRequest(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);
