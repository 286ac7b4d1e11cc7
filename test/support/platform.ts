/**
 * Starts platform nodes inside the test process: each node is a real ServiceBroker built from
 * broker.config.ts with its own env, so a test cluster is configured the way production is.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type ServiceBroker as Broker, ServiceBroker } from "moleculer";
import { createBrokerOptions } from "../../broker.config.ts";
import GatewayService from "../../gateway/gateway.service.ts";
import { loadConfig } from "../../lib/config.ts";
import AuthService from "../../services/auth/auth.service.ts";
import ChatService from "../../services/chat/chat.service.ts";
import ProfileService from "../../services/profile/profile.service.ts";

export const SERVICES = {
  auth: AuthService,
  profile: ProfileService,
  chat: ChatService,
  gateway: GatewayService,
} as const;
export type ServiceName = keyof typeof SERVICES;

export interface PlatformNode {
  broker: Broker;
  /** http://127.0.0.1:PORT when the node runs the gateway. */
  url: string;
  stop(): Promise<void>;
}

/** Test defaults: any free port, quiet logs, limits high enough not to get in the way. */
const TEST_ENV: Record<string, string> = {
  PORT: "0",
  HOST: "127.0.0.1",
  METRICS_PORT: "0",
  METRICS_ENABLED: "false",
  LOG_LEVEL: "warn",
  RATE_LIMIT_REGISTER_IP: "100000/60",
  RATE_LIMIT_LOGIN_IP: "100000/60",
  RATE_LIMIT_LOGIN_ACCOUNT: "1000/60",
  RATE_LIMIT_SEND_USER: "1000000/60",
  RATE_LIMIT_CHAT_CREATE_USER: "1000000/60",
  RATE_LIMIT_MEMBER_ADD_USER: "1000000/60",
};

export async function startNode(
  services: ServiceName[],
  env: Record<string, string | undefined> = {},
): Promise<PlatformNode> {
  const config = loadConfig({ ...TEST_ENV, ...env });
  const broker = new ServiceBroker(createBrokerOptions(config));
  for (const name of services) broker.createService(SERVICES[name] as never);
  try {
    await broker.start();
  } catch (err) {
    await broker.stop().catch(() => undefined);
    throw err;
  }
  let url = "";
  if (services.includes("gateway")) {
    const gateway = broker.getLocalService("gateway") as unknown as GatewayService;
    url = `http://127.0.0.1:${gateway.port}`;
  }
  return { broker, url, stop: () => broker.stop() };
}

export async function tempDir(prefix = "social-test-"): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The whole platform in one process on the embedded store, as `npm start` runs it. */
export async function startEmbedded(env: Record<string, string | undefined> = {}) {
  const data = await tempDir();
  const node = await startNode(["auth", "profile", "chat", "gateway"], { DATA_DIR: data.dir, ...env });
  await waitReady(node.url);
  return {
    ...node,
    dataDir: data.dir,
    stop: async () => {
      await node.stop();
      await data.remove();
    },
  };
}

export async function waitReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/health/ready`).catch((e: Error) => e);
    if (!(res instanceof Error) && res.status === 200) return;
    last = res instanceof Error ? res.message : `${res.status} ${await res.text()}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

let counter = 0;
/** A fresh, valid registration each call. */
export function newUser(prefix = "u") {
  counter += 1;
  const tag = `${prefix}${Date.now().toString(36)}${counter}${Math.floor(Math.random() * 1e4)}`;
  return { email: `${tag}@example.test`, username: tag.slice(0, 32), password: `pw-${tag}-Xq9!long` };
}
