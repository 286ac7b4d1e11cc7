/**
 * Baseline B: the trivial moleculer-web -> NATS -> service call. Brokers that meet only over NATS:
 * a gateway exposing `GET /echo` -> `echo.hello`, and the echo service, which answers a constant;
 * both in this process by default, or one of them when the runner splits them (--split). Same
 * serializer, log level and metrics setting as the platform nodes.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type BrokerOptions, ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";
import { announce, childArgs, stopOnRequest } from "../child.ts";

type Role = "gateway" | "echo";
const { transporter, namespace, roles } = childArgs<{
  transporter: string;
  namespace: string;
  roles: Role[];
}>();

const options = (nodeID: string): BrokerOptions => ({
  namespace,
  nodeID,
  transporter: { type: "NATS", options: { url: transporter } },
  serializer: "JSON",
  logger: { type: "Pino", options: { level: "warn" } },
  metrics: { enabled: false },
  tracing: { enabled: false },
});

const brokers: ServiceBroker[] = [];
stopOnRequest(async () => {
  for (const broker of brokers) await broker.stop();
});

let url = "";
if (roles.includes("gateway")) {
  const gateway = new ServiceBroker(options("echo-gateway"));
  const api = gateway.createService({
    name: "api",
    mixins: [ApiGateway],
    settings: {
      port: 0,
      ip: "127.0.0.1",
      routes: [
        { path: "/", mappingPolicy: "restrict", autoAliases: false, aliases: { "GET /echo": "echo.hello" } },
      ],
      log4XXResponses: false,
      logRequestParams: null,
      logResponseData: null,
    },
  });
  brokers.push(gateway);
  await gateway.start();
  url = `http://127.0.0.1:${((api as unknown as { server: Server }).server.address() as AddressInfo).port}`;
}
if (roles.includes("echo")) {
  const service = new ServiceBroker(options("echo-service"));
  service.createService({ name: "echo", actions: { hello: () => ({ hello: "world" }) } });
  brokers.push(service);
  await service.start();
}
if (url) await (brokers[0] as ServiceBroker).waitForServices(["echo"], 30_000);
announce("ready", { url, path: "/echo" });
