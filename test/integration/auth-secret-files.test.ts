/**
 * The embedded store's files hold the private signing keys and the password hashes (signing keys
 * live in the store, nowhere else): auth keeps DATA_DIR 0700 and its files 0600, and narrows what
 * it finds open to others at start, with a warning.
 */
import assert from "node:assert/strict";
import { chmod, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { logDestination } from "../../lib/log-destination.ts";
import type { Store } from "../../lib/store/types.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const newDir = tempDirs("social-secret-data-");
const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

/** The log lines the process writes while `run` runs. */
async function logsOf(run: () => Promise<void>): Promise<string[]> {
  const destination = logDestination();
  const write = destination.write;
  const lines: string[] = [];
  destination.write = function (this: typeof destination, chunk: string) {
    lines.push(String(chunk));
    return write.call(this, chunk);
  } as typeof write;
  try {
    await run();
  } finally {
    destination.write = write;
  }
  return lines;
}

async function storeFiles(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((name) => name.startsWith("social.sqlite"))
    .map((n) => path.join(dir, n));
}

describe("secret files of the embedded store", () => {
  const running: { stop(): Promise<void> }[] = [];
  after(async () => {
    for (const platform of running) await platform.stop();
  });

  test("a fresh DATA_DIR is made 0700 and the store's files, keys included, 0600", async () => {
    const dataDir = path.join(await newDir(), "data");
    let platform: Awaited<ReturnType<typeof startEmbedded>> | undefined;
    const lines = await logsOf(async () => {
      platform = await startEmbedded({ DATA_DIR: dataDir });
    });
    if (!platform) throw new Error("not started");
    running.push(platform);
    assert.deepEqual(
      lines.filter((line) => line.includes("open to group or others")),
      [],
      "nothing was ever open: no warning",
    );
    await new ApiClient(platform.url).register(newUser());
    const keys = (platform.broker.getLocalService("auth") as unknown as { store: Store }).store;
    assert.ok((await keys.collection("signing_keys").count({})) > 0, "the private keys are in this store");
    assert.equal(await modeOf(dataDir), 0o700);
    const files = await storeFiles(dataDir);
    assert.ok(files.includes(path.join(dataDir, "social.sqlite")), files.join());
    for (const file of files) assert.equal(await modeOf(file), 0o600, file);
    await platform.stop();
    running.pop();
  });

  test("a store file made 0644 and a folder made 0755 are 0600 and 0700 after a start, with a warning", async () => {
    const dataDir = await newDir();
    const first = await startEmbedded({ DATA_DIR: dataDir });
    const input = newUser();
    await new ApiClient(first.url).register(input);
    await first.stop();
    const files = await storeFiles(dataDir);
    const db = path.join(dataDir, "social.sqlite");
    assert.ok(files.includes(db));
    for (const file of files) await chmod(file, 0o644);
    await chmod(dataDir, 0o755);

    const lines = await logsOf(async () => {
      running.push(await startEmbedded({ DATA_DIR: dataDir }));
    });
    const platform = running.at(-1) as Awaited<ReturnType<typeof startEmbedded>>;
    assert.equal(await modeOf(dataDir), 0o700);
    for (const file of files) assert.equal(await modeOf(file), 0o600, file);
    const warnings = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((entry) => entry.level === 40);
    assert.ok(
      warnings.some((w) => w.msg.includes(db) && w.msg.includes("0644") && w.msg.includes("0600")),
      JSON.stringify(warnings),
    );
    assert.ok(warnings.some((w) => w.msg.includes(dataDir) && w.msg.includes("0755")));
    const login = await new ApiClient(platform.url).raw("POST", "/auth/login", {
      body: { email: input.email, password: input.password },
    });
    assert.equal(login.status, 200, "the store and its keys still work");
  });
});
