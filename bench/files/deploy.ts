/**
 * The platforms the file benchmark runs against, each in child processes (node.ts), with users
 * written into the store before they start (bench/chat/seed.ts; an access token each):
 *
 * - `embedded`: one process, one broker with every service, the embedded store and the disk file
 *   store, as `npm start` runs it. Its gateway shares the process (and the memory figure) with
 *   auth, profile, chat and the store's thread.
 * - `cluster-disk`: a gateway node alone in one process, and auth, profile and chat in one broker
 *   of another (the embedded document store), over NATS; both open the same disk file store folder.
 * - `cluster-s3`: the same two processes with the S3 file store on SeaweedFS.
 *
 * The gateway's pid is the one whose memory is sampled.
 */
import path from "node:path";
import { loadConfig } from "../../lib/config.ts";
import { tempDir } from "../../test/support/platform.ts";
import { type BenchUser, seedUsers } from "../chat/seed.ts";
import type { MeasuredPid } from "../cpu.ts";
import { type BenchChild, startChild } from "../processes.ts";
import { BENCH_ENV } from "../ws/topology.ts";
import type { FilesNodeArgs, FilesService } from "./node.ts";

export const TARGETS = ["embedded", "cluster-disk", "cluster-s3"] as const;
export type FilesTarget = (typeof TARGETS)[number];

export const TARGET_LABELS: Record<FilesTarget, string> = {
  embedded: "embedded (disk)",
  "cluster-disk": "gateway alone, disk",
  "cluster-s3": "gateway alone, S3",
};

const READY_TIMEOUT_MS = 180_000;

/** Limits far above what the benchmark stores: 20 uploads of 100 MB at once, every run. */
export const FILES_ENV: Record<string, string> = {
  UPLOAD_MAX_BYTES: String(2 * 1024 ** 3),
  UPLOAD_QUOTA_BYTES: String(10 * 1024 ** 4),
};

export interface Deployed {
  target: FilesTarget;
  url: string;
  users: BenchUser[];
  gateway: BenchChild;
  /** The chat/auth/profile process of a cluster; undefined when embedded. */
  services: BenchChild | undefined;
  memoryFile: string;
  /** The disk file store's folder (disk targets). */
  filesDir: string | undefined;
  pids: Record<string, MeasuredPid>;
  stop(): Promise<void>;
}

export interface Infra {
  natsUrl: string | undefined;
  /** FILE_STORE=s3, S3_* and AWS_* for the platform (startSeaweed's env). */
  s3Env: Record<string, string> | undefined;
}

export async function deploy(
  target: FilesTarget,
  users: number,
  infra: Infra,
  extraEnv: Record<string, string>,
  log: (m: string) => void,
  profileDir: string | undefined,
  /** Names this deployment's children and profiles (several deployments of a target in one bench). */
  tag = "main",
): Promise<Deployed> {
  const dir = await tempDir(`social-bench-files-${target}-${tag}-`);
  const namespace = `benchfiles${target.replace(/\W/g, "")}${process.pid}`;
  const cluster = target !== "embedded";
  if (cluster && !infra.natsUrl) throw new Error(`${target} needs NATS`);
  if (target === "cluster-s3" && !infra.s3Env) throw new Error(`${target} needs SeaweedFS`);
  const filesDir = target === "cluster-s3" ? undefined : path.join(dir.dir, "data", "files");
  const env: Record<string, string> = {
    ...BENCH_ENV,
    ...FILES_ENV,
    DATA_DIR: path.join(dir.dir, "data"),
    NAMESPACE: namespace,
    ...(cluster ? { TRANSPORTER: infra.natsUrl as string } : {}),
    ...(target === "cluster-s3" ? infra.s3Env : { FILE_STORE: "disk" }),
    ...extraEnv,
  };
  const seeded = await seedUsers(loadConfig(env), users, `f${Date.now().toString(36).slice(-4)}x`, log);
  log(`${target}: ${users} users seeded in ${seeded.seconds.toFixed(1)} s; starting the platform`);
  const flags = (name: string) =>
    profileDir
      ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=files-${name}-${tag}.cpuprofile`]
      : [];
  const memoryFile = path.join(dir.dir, "memory.json");
  const children: BenchChild[] = [];
  const stop = async () => {
    for (const child of [...children].reverse()) await child.stop();
    await dir.remove();
  };
  const start = async (name: string, brokers: FilesService[][], memory: string) => {
    const arg: FilesNodeArgs = { brokers, env, memoryFile: memory };
    const child = await startChild(`files-${name}-${tag}`, "./files/node.ts", arg, {
      timeoutMs: READY_TIMEOUT_MS,
      nodeFlags: flags(name),
    });
    children.push(child);
    return child;
  };
  try {
    if (!cluster) {
      const gateway = await start(target, [["auth", "profile", "chat", "gateway"]], memoryFile);
      return {
        target,
        url: String(gateway.data.url),
        users: seeded.users,
        gateway,
        services: undefined,
        memoryFile,
        filesDir,
        pids: { runner: process.pid, platform: gateway.pid },
        stop,
      };
    }
    // The services first: the gateway is ready once it sees them.
    const services = await start(
      `${target}-services`,
      [["auth", "profile", "chat"]],
      `${memoryFile}.services`,
    );
    const gateway = await start(`${target}-gateway`, [["gateway"]], memoryFile);
    return {
      target,
      url: String(gateway.data.url),
      users: seeded.users,
      gateway,
      services,
      memoryFile,
      filesDir,
      pids: { runner: process.pid, gateway: gateway.pid, services: services.pid },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
