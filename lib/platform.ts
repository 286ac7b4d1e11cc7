/**
 * Where a node's PlatformConfig travels: inside its BrokerOptions, so several brokers in one
 * process (tests, `--instances`) each keep their own settings.
 */
import type { ServiceBroker } from "moleculer";
import type { PlatformConfig } from "./config.ts";

export const PLATFORM_CONFIG = "platformConfig";

export function platformConfig(broker: ServiceBroker): PlatformConfig {
  const config = (broker.options as Record<string, unknown>)[PLATFORM_CONFIG] as PlatformConfig | undefined;
  if (!config) throw new Error("The broker was not created from broker.config.ts (no platform config)");
  return config;
}
