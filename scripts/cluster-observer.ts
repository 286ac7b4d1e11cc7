/**
 * A broker with no services on the cluster's bus: it tells which nodes have joined and what they
 * host, so the cluster script knows every worker started, not only one per service.
 */
import { ServiceBroker } from "moleculer";

export interface NodeInfo {
  id: string;
  services: string[];
}

export class ClusterObserver {
  readonly #broker: ServiceBroker;

  private constructor(broker: ServiceBroker) {
    this.#broker = broker;
  }

  static async start(namespace: string, transporter: string): Promise<ClusterObserver> {
    const broker = new ServiceBroker({
      namespace,
      nodeID: `cluster-observer-${process.pid}`,
      transporter: { type: "NATS", options: { url: transporter, maxReconnectAttempts: -1 } },
      serializer: "JSON",
      heartbeatInterval: 5,
      heartbeatTimeout: 15,
      logger: false,
      // Moleculer would otherwise stop the broker and exit the process on SIGINT/SIGTERM itself.
      skipProcessEventRegistration: true,
      metrics: { enabled: false },
    });
    await broker.start();
    return new ClusterObserver(broker);
  }

  /** The available nodes other than this one, with the names of the services they host. */
  nodes(): NodeInfo[] {
    const list = this.#broker.registry.getNodeList({ onlyAvailable: true, withServices: true });
    return list
      .filter((n) => !n.local)
      .map((n) => ({
        id: n.id,
        services: (n.services ?? []).map((s) => String(s.name)).filter((name) => !name.startsWith("$")),
      }));
  }

  stop(): Promise<void> {
    return this.#broker.stop();
  }
}
