/**
 * What the deployment files hand to a node, checked the way the node itself would take it: the
 * env through loadConfig (and the proxy list through the gateway's own parser), SERVICES through
 * moleculer-runner's rules with the image's `--mask **\/*.service.ts`.
 */
import { existsSync, globSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { clientIpResolver } from "../../gateway/client-ip.ts";
import { configVariables, loadConfig, type PlatformConfig } from "../../lib/config.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every variable loadConfig reads (the list test/unit/lib/config.test.ts checks the README with). */
export const CONFIG_VARIABLES = configVariables();

/** The config a node would start with, or the error that would stop it. */
export function configFor(env: Record<string, string | undefined>): PlatformConfig {
  const config = loadConfig(env);
  clientIpResolver(config.trustedProxies);
  return config;
}

/** Every service file of the repository, relative to the root. */
export function allServiceFiles(): string[] {
  return globSync("{services,gateway}/**/*.service.ts", { cwd: ROOT }).sort();
}

/**
 * The files moleculer-runner loads for SERVICES (comma-separated folders or files, relative to
 * the working folder), as relative paths; throws for an entry that names nothing.
 */
export function servicesOf(value: string): string[] {
  const files = new Set<string>();
  for (const entry of value.split(",").map((s) => s.trim())) {
    const full = path.resolve(ROOT, entry);
    if (existsSync(full) && statSync(full).isDirectory()) {
      const found = globSync("**/*.service.ts", { cwd: full });
      if (found.length === 0) throw new Error(`SERVICES entry ${entry} holds no *.service.ts`);
      for (const f of found) files.add(path.relative(ROOT, path.join(full, f)));
    } else if (existsSync(full)) {
      files.add(entry);
    } else {
      throw new Error(`SERVICES entry ${entry} is neither a folder nor a file`);
    }
  }
  return [...files].sort();
}

/** Whether SERVICES loads the gateway. */
export function loadsGateway(value: string): boolean {
  return servicesOf(value).includes("gateway/gateway.service.ts");
}

/**
 * Whether SERVICES loads a service that opens the file store (lib/files openBlobStore): those
 * nodes, gateways and chat, need the object store and its key pair; the others need neither.
 */
export function opensFileStore(value: string): boolean {
  return servicesOf(value).some((file) =>
    /\bopenBlobStore\(/.test(readFileSync(path.join(ROOT, file), "utf8")),
  );
}
