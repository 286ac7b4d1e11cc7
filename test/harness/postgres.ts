/**
 * The PostgreSQL server under the test FerretDB: Debian's `postgresql` package, one server per
 * FerretDB on a free port of 127.0.0.1, its data in the FerretDB's temp dir. PostgreSQL refuses to
 * run as root, so when the tests run as root it runs as the `postgres` user the package creates.
 *
 * A data dir is copied from a template made once per machine with `initdb` (about two seconds of
 * CPU each time otherwise, for every test file that starts servers). The server runs with
 * fsync=off: a commit is written to the OS before it is acknowledged, so it survives the process
 * being killed but not a power loss, which is what a test server in a temp dir needs.
 *
 * FerretDB 1.24 turns a filter such as `{ _id: "x" }` into `WHERE _jsonb->'_id' @> '"x"'`, and
 * indexes a field with a btree on `(_jsonb->'_id')`, which `@>` cannot use: every find, update
 * and delete read the whole table (5 ms a lookup at 20,000 rows here, and PostgreSQL's CPU grew
 * with every stored message). So an event trigger gives each field of every index FerretDB creates
 * a GIN twin on the same expression (`jsonb_path_ops`, which serves `@>`): 0.06 ms for that lookup.
 * Plans stay custom (`plan_cache_mode`), since FerretDB passes the field name as a parameter and a
 * generic plan could not match the index.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { ServerSpec } from "./server-process.ts";

const run = promisify(execFile);

/** Per PostgreSQL major version; changing a setting that initdb bakes in means a new name. */
function templateDir(bin: string): string {
  return path.join(os.tmpdir(), `social-test-postgres-${path.basename(path.dirname(bin))}-template-1`);
}

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
    const dir = templateDir(bin);
    if (existsSync(path.join(dir, "PG_VERSION"))) return dir;
    const fresh = `${dir}.${process.pid}.tmp`;
    await rm(fresh, { recursive: true, force: true });
    await run(
      path.join(bin, "initdb"),
      ["-D", fresh, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"],
      { ...(user ?? {}), cwd: os.tmpdir() },
    );
    try {
      await rename(fresh, dir);
    } catch {
      // Another process made it first.
      await rm(fresh, { recursive: true, force: true });
    }
    return dir;
  })();
  template.catch(() => {
    template = undefined;
  });
  return template;
}

export function postgresSpec(): ServerSpec {
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
      "-c",
      "plan_cache_mode=force_custom_plan",
    ],
    url: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
    probe: async (port) => {
      await run(path.join(bin, "pg_isready"), [
        "-q",
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
      ]);
    },
  };
}

/**
 * A GIN twin for every field of every btree index FerretDB creates (each `_jsonb->'field'` key
 * expression, once per table): a filter on several fields, such as a message's chat, sender and
 * clientMsgId, is then a BitmapAnd of twins instead of a read of every message of the chat.
 */
const GIN_TWINS = `
CREATE OR REPLACE FUNCTION ferretdb_gin_twin() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  created record;
  rel oid;
  natts int;
  expr text;
  twin text;
BEGIN
  FOR created IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    CONTINUE WHEN (SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = created.objid) <> 'btree';
    SELECT indrelid, indnkeyatts INTO rel, natts FROM pg_index WHERE indexrelid = created.objid;
    FOR k IN 1..natts LOOP
      expr := pg_get_indexdef(created.objid, k, false);
      CONTINUE WHEN expr !~ '^\\(+_jsonb -> ''[^'']+''::text\\)+$';
      twin := 'gin_' || md5(rel::text || expr);
      CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class WHERE relname = twin);
      EXECUTE format('CREATE INDEX %I ON %s USING gin (%s jsonb_path_ops)', twin, rel::regclass::text, expr);
    END LOOP;
  END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS ferretdb_gin_twin;
CREATE EVENT TRIGGER ferretdb_gin_twin ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION ferretdb_gin_twin();
`;

/** Runs SQL on a server started from postgresSpec(); resolves what psql printed, unaligned. */
export async function psql(port: number, sql: string): Promise<string> {
  const { stdout } = await run(path.join(binDir(), "psql"), [
    ...["-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port)],
    ...["-U", "postgres", "-d", "postgres", "-c", sql],
  ]);
  return stdout;
}

/** Installs the GIN twins' trigger in a server started from postgresSpec(), before FerretDB uses it. */
export async function installGinTwins(port: number): Promise<void> {
  await psql(port, GIN_TWINS);
}
