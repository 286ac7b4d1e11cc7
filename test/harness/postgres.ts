/**
 * The PostgreSQL server under the test FerretDB: Debian's `postgresql` package, one server per
 * FerretDB on a free port of 127.0.0.1, its data in the FerretDB's temp dir. PostgreSQL refuses to
 * run as root, so when the tests run as root it runs as the `postgres` user the package creates.
 *
 * A data dir is copied from a template made once per machine with `initdb` (about two seconds of
 * CPU each time otherwise, for every test file that starts servers). The server runs with
 * fsync=off: a commit is written to the OS before it is acknowledged, so it survives the process
 * being killed but not a power loss, which is what a test server in a temp dir needs.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { ServerSpec } from "./server-process.ts";

const run = promisify(execFile);

/** Changing a setting that initdb bakes in means a new template name. */
const TEMPLATE = path.join(os.tmpdir(), "social-test-postgres-template-1");

/** The bin dir of the newest PostgreSQL that Debian's packages installed. */
function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(
      `postgres not found under ${root}; run \`npm run test:setup\` to install the test servers`,
    );
  }
  return path.join(root, newest, "bin");
}

/** The `postgres` user when running as root (PostgreSQL will not run as root), else nobody. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error("running as root, and there is no postgres user to run PostgreSQL as");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

let template: Promise<string> | undefined;

/** Makes the template data dir once; concurrent test processes each make one and one wins. */
function ensureTemplate(bin: string, user: { uid: number; gid: number } | undefined): Promise<string> {
  template ??= (async () => {
    if (existsSync(path.join(TEMPLATE, "PG_VERSION"))) return TEMPLATE;
    const fresh = `${TEMPLATE}.${process.pid}.tmp`;
    await rm(fresh, { recursive: true, force: true });
    await run(
      path.join(bin, "initdb"),
      ["-D", fresh, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"],
      { ...(user ?? {}), cwd: os.tmpdir() },
    );
    try {
      await rename(fresh, TEMPLATE);
    } catch {
      // Another process made it first.
      await rm(fresh, { recursive: true, force: true });
    }
    return TEMPLATE;
  })();
  template.catch(() => {
    template = undefined;
  });
  return template;
}

export function postgresSpec(): Omit<ServerSpec, "command"> & { command: string } {
  const bin = binDir();
  const user = serverUser();
  return {
    name: "postgres",
    command: path.join(bin, "postgres"),
    ...(user ? { user } : {}),
    prepare: async (dir) => {
      // cp -a keeps the template's owner, mode 0700 included, which PostgreSQL insists on.
      await run("cp", ["-a", await ensureTemplate(bin, user), path.join(dir, "data")]);
    },
    args: (port, dir) => [
      "-D",
      path.join(dir, "data"),
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=200",
    ],
    url: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
    probe: async (port) => {
      await run(path.join(bin, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port)]);
    },
  };
}
