/**
 * A real cluster for the cluster tier: nats-server, redis-server and FerretDB started by the
 * harness on free ports (or the servers named by NATS_URL, REDIS_URL, MONGO_URL), and platform
 * nodes as separate brokers that only meet over NATS.
 */
import { randomBytes } from "node:crypto";
import {
  type FerretHandle,
  type ServerHandle,
  startFerret,
  startNats,
  startRedis,
} from "../harness/servers.ts";
import { type PlatformNode, type ServiceName, startNode, tempDir } from "./platform.ts";

export interface Servers {
  nats: ServerHandle;
  redis: ServerHandle;
  mongo: FerretHandle;
  stop(): Promise<void>;
}

export async function startServers(): Promise<Servers> {
  const [nats, redis, mongo] = await Promise.all([startNats(), startRedis(), startFerret()]);
  return {
    nats,
    redis,
    mongo,
    stop: async () => {
      await Promise.all([nats, redis, mongo].map((s) => (s.external ? undefined : s.stop())));
    },
  };
}

/** A database of its own per cluster, so clusters sharing one external server stay apart. */
function withDatabase(url: string, db: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${db}`;
  return parsed.toString();
}

export class TestCluster {
  readonly servers: Servers;
  readonly namespace: string;
  readonly env: Record<string, string>;
  readonly nodes = new Map<string, PlatformNode>();
  private readonly dataDir: { dir: string; remove(): Promise<void> };

  private constructor(
    servers: Servers,
    env: Record<string, string>,
    dataDir: { dir: string; remove(): Promise<void> },
  ) {
    this.servers = servers;
    this.namespace = env.NAMESPACE as string;
    this.env = env;
    this.dataDir = dataDir;
  }

  static async start(servers: Servers, env: Record<string, string> = {}): Promise<TestCluster> {
    const namespace = `t${randomBytes(4).toString("hex")}`;
    const dataDir = await tempDir("social-cluster-");
    return new TestCluster(
      servers,
      {
        NAMESPACE: namespace,
        TRANSPORTER: servers.nats.url,
        MONGO_URL: withDatabase(servers.mongo.url, namespace),
        REDIS_URL: servers.redis.url,
        DATA_DIR: dataDir.dir,
        ...env,
      },
      dataDir,
    );
  }

  /** Starts a node hosting the given services; env entries set to undefined are unset. */
  async add(
    nodeId: string,
    services: ServiceName[],
    env: Record<string, string | undefined> = {},
  ): Promise<PlatformNode> {
    const node = await startNode(services, { ...this.env, NODE_ID: nodeId, ...env });
    this.nodes.set(nodeId, node);
    return node;
  }

  node(nodeId: string): PlatformNode {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`No node ${nodeId}`);
    return node;
  }

  async remove(nodeId: string): Promise<void> {
    await this.nodes.get(nodeId)?.stop();
    this.nodes.delete(nodeId);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.keys()].map((id) => this.remove(id)));
    await this.dataDir.remove();
  }
}
