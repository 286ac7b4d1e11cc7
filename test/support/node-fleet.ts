/**
 * Platform nodes as processes of their own (moleculer-runner, as operators run them) that join a
 * TestCluster's bus, store and Redis, so a test can SIGKILL or SIGTERM a real node. Each node
 * gets a metrics port of its own, so a test can tell from `moleculer_request_total` which node
 * served what.
 */
import { freePort } from "../harness/servers.ts";
import type { TestCluster } from "./cluster.ts";
import { NodeProcess } from "./node-process.ts";

const TEST_ENV: Record<string, string> = {
  HOST: "127.0.0.1",
  METRICS_ENABLED: "true",
  RATE_LIMIT_REGISTER_IP: "100000/60",
  RATE_LIMIT_LOGIN_IP: "100000/60",
  RATE_LIMIT_LOGIN_ACCOUNT: "1000/60",
  RATE_LIMIT_SEND_USER: "1000000/60",
  RATE_LIMIT_CHAT_CREATE_USER: "1000000/60",
  RATE_LIMIT_MEMBER_ADD_USER: "1000000/60",
};

export interface FleetNode {
  process: NodeProcess;
  /** http://127.0.0.1:PORT of a gateway node. */
  url: string;
  metricsPort: number;
}

export class NodeFleet {
  readonly nodes = new Map<string, FleetNode>();
  private readonly cluster: TestCluster;

  constructor(cluster: TestCluster) {
    this.cluster = cluster;
  }

  /** Starts a node process; `port` keeps a gateway on a known port across restarts. */
  async start(
    nodeId: string,
    services: string[],
    options: { port?: number; env?: Record<string, string> } = {},
  ): Promise<FleetNode> {
    const metricsPort = await freePort();
    const port = options.port ?? (services.includes("gateway") ? await freePort() : 0);
    const env = {
      ...this.cluster.env,
      ...TEST_ENV,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      ...options.env,
    };
    const node: FleetNode = {
      process: new NodeProcess(nodeId, services, env),
      url: `http://127.0.0.1:${port}`,
      metricsPort,
    };
    this.nodes.set(nodeId, node);
    await node.process.start();
    return node;
  }

  get(nodeId: string): FleetNode {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`No node process ${nodeId}`);
    return node;
  }

  /** Calls of an action this node has served, from its Prometheus metrics. */
  async served(nodeId: string, action: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.get(nodeId).metricsPort}/metrics`);
    let total = 0;
    for (const line of (await res.text()).split("\n")) {
      if (line.startsWith("moleculer_request_total{") && line.includes(`action="${action}"`)) {
        total += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
      }
    }
    return total;
  }

  /** SIGKILLs every node still running (for `after`). */
  async killAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.process.kill("SIGKILL")));
  }
}
