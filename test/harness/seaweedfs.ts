/**
 * SeaweedFS for the tests of the S3 file store: `weed mini` (master, volume server, filer and S3
 * gateway in one process) in a fresh temp dir, every port a free one of 127.0.0.1, SigV4 with one
 * known access key (an `-s3.config` identity). `npm run test:setup` builds the `weed` binary.
 *
 * Nothing phones home: telemetry is off (`-master.telemetry=false`), and the env vars weed would
 * act on are removed from its environment (SENTRY_DSN would send crash reports; AWS_ACCESS_KEY_ID /
 * S3_BUCKET would add an admin identity / create a bucket). WebDAV, the admin UI and the Iceberg and
 * Lance catalogs are off; the admin server (its API and worker) cannot be turned off in mini mode,
 * so it gets free loopback ports like the rest. Logs go to stderr (not to /tmp) and the filer's and
 * S3's local sockets to the temp dir; the gRPC sockets mini always makes in /tmp are removed at stop.
 * A bucket is not made: the store makes it (S3BlobStore.ensureBucket), as on a fresh deployment.
 *
 * After a restart with data, weed's master refuses new writes for its warm-up (15 s from its start,
 * so about 11 s after restart() resolves; not configurable): reads answer at once, and a PUT waits
 * in the S3 gateway, which retries, until then.
 */

import { rmSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { findBinary } from "./binaries.ts";
import { ManagedServer } from "./server-process.ts";
import { freePort } from "./servers.ts";

export interface SeaweedHandle {
  /** The S3 endpoint, http://127.0.0.1:PORT. */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The platform's env vars for this store (FILE_STORE=s3, S3_*, AWS_*). */
  readonly env: Record<string, string>;
  readonly pid: number | undefined;
  /** SIGKILL (nothing in the temp dir is kept), then removes the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL, as when the store goes away; it stays down until restart(). */
  kill(): Promise<void>;
  /** Stops it if it runs (SIGTERM, SIGKILL after 5 s) and starts it again with the same dir and ports. */
  restart(): Promise<void>;
}

const ACCESS_KEY_ID = "social-test-key";
const SECRET_ACCESS_KEY = "social-test-secret-0123456789abcdef";
const REGION = "us-east-1";
/** Env vars weed reads that must not reach it from the test process. */
const SCRUBBED_ENV = [
  "SENTRY_DSN",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "S3_BUCKET",
  "S3_TABLE_BUCKET",
  "S3_EXTERNAL_URL",
];
const GRPC_SOCKET_KINDS = ["master", "volume", "filer", "s3", "admin"] as const;

/** The /tmp sockets of every weed started, removed at exit too (ManagedServer SIGKILLs weed then). */
const leftSockets = new Set<string>();
process.on("exit", () => {
  for (const socket of leftSockets) rmSync(socket, { force: true });
});

export async function startSeaweed(options: { bucket?: string } = {}): Promise<SeaweedHandle> {
  const weed = findBinary("weed");
  const bucket = options.bucket ?? "social-test";
  const ports = {
    master: await freePort(),
    masterGrpc: await freePort(),
    volume: await freePort(),
    volumeGrpc: await freePort(),
    filer: await freePort(),
    filerGrpc: await freePort(),
    s3Grpc: await freePort(),
    admin: await freePort(),
    adminGrpc: await freePort(),
    webdav: await freePort(),
  };
  const grpcPorts: Record<(typeof GRPC_SOCKET_KINDS)[number], number> = {
    master: ports.masterGrpc,
    volume: ports.volumeGrpc,
    filer: ports.filerGrpc,
    s3: ports.s3Grpc,
    admin: ports.adminGrpc,
  };
  const sockets = GRPC_SOCKET_KINDS.map((kind) => `/tmp/seaweedfs-${kind}-grpc-${grpcPorts[kind]}.sock`);
  for (const socket of sockets) leftSockets.add(socket);
  const removeGrpcSockets = async () => {
    await Promise.all(sockets.map((socket) => rm(socket, { force: true })));
    for (const socket of sockets) leftSockets.delete(socket);
  };
  const probeClient = (port: number) =>
    new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 1_000, socketTimeout: 2_000 },
    });
  const server = await ManagedServer.start(
    {
      name: "weed",
      // env(1) execs weed in the same process, so the handle's pid is weed's.
      command: "/usr/bin/env",
      prepare: async (dir) => {
        const identities = [
          {
            name: "social-test",
            credentials: [{ accessKey: ACCESS_KEY_ID, secretKey: SECRET_ACCESS_KEY }],
            actions: ["Admin", "Read", "List", "Tagging", "Write"],
          },
        ];
        await writeFile(path.join(dir, "s3.json"), JSON.stringify({ identities }));
      },
      args: (port, dir) => [
        ...SCRUBBED_ENV.flatMap((name) => ["-u", name]),
        weed,
        "-logtostderr",
        "mini",
        `-dir=${path.join(dir, "data")}`,
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        `-s3.port=${port}`,
        `-s3.port.grpc=${ports.s3Grpc}`,
        `-s3.config=${path.join(dir, "s3.json")}`,
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        `-s3.localSocket=${path.join(dir, "s3.sock")}`,
        `-master.port=${ports.master}`,
        `-master.port.grpc=${ports.masterGrpc}`,
        "-master.telemetry=false",
        `-volume.port=${ports.volume}`,
        `-volume.port.grpc=${ports.volumeGrpc}`,
        `-filer.port=${ports.filer}`,
        `-filer.port.grpc=${ports.filerGrpc}`,
        `-filer.localSocket=${path.join(dir, "filer.sock")}`,
        `-admin.port=${ports.admin}`,
        `-admin.port.grpc=${ports.adminGrpc}`,
        "-admin.port.legacy=0",
        "-admin.ui=false",
        "-webdav=false",
        `-webdav.port=${ports.webdav}`,
      ],
      url: (port) => `http://127.0.0.1:${port}`,
      // Ready once a signed call is answered: the gateway is up and knows the test identity.
      probe: async (port) => {
        const client = probeClient(port);
        try {
          await client.send(new ListBucketsCommand({}));
        } finally {
          client.destroy();
        }
      },
    },
    await freePort(),
  ).catch(async (err: unknown) => {
    await removeGrpcSockets();
    throw err;
  });
  const endpoint = server.url;
  return {
    endpoint,
    port: server.port,
    bucket,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    env: {
      FILE_STORE: "s3",
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_REGION: REGION,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    },
    get pid() {
      return server.pid;
    },
    // weed's own graceful stop hangs now and then (about 1 in 15 here, in its volume server's HTTP
    // shutdown), and a temp dir about to be removed needs no graceful stop: SIGKILL.
    stop: () =>
      keepingLoopAlive(async () => {
        await server.kill();
        await server.stop();
        await removeGrpcSockets();
      }),
    kill: () => keepingLoopAlive(() => server.kill()),
    restart: () => keepingLoopAlive(() => server.restart()),
  };
}

/**
 * Runs `work` with a timer holding the event loop: ManagedServer unrefs its child, so while a test
 * only waits for weed to exit (after a SIGKILL) the loop could otherwise end before the exit event.
 */
async function keepingLoopAlive<T>(work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1_000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
