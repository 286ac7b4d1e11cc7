/**
 * Finds the server binaries the integration tests run. A missing binary is an error, never a skip:
 * `npm run test:setup` installs them all.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";

const KNOWN_DIRS = ["/usr/sbin", "/usr/bin", "/root/go/bin"];

const found = new Map<string, string>();

export function findBinary(name: string): string {
  const cached = found.get(name);
  if (cached) return cached;
  const pathDirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  const searched = [...new Set([...pathDirs, ...KNOWN_DIRS])];
  let binary = firstExecutable(searched, name);
  if (!binary) {
    const goDir = goBinDir();
    if (goDir && !searched.includes(goDir)) searched.push(goDir);
    binary = goDir ? firstExecutable([goDir], name) : undefined;
  }
  if (!binary) {
    throw new Error(
      `${name} not found (searched ${searched.join(", ")}); run \`npm run test:setup\` to install the test servers`,
    );
  }
  found.set(name, binary);
  return binary;
}

function firstExecutable(dirs: string[], name: string): string | undefined {
  return dirs.map((dir) => path.join(dir, name)).find(isExecutable);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function goBinDir(): string | undefined {
  try {
    const gopath = execFileSync("go", ["env", "GOPATH"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return gopath.trim() ? path.join(gopath.trim(), "bin") : undefined;
  } catch {
    return undefined;
  }
}
