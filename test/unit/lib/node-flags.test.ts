/** Every way of starting a platform node passes lib/node-flags.ts's flags to Node. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { PLATFORM_NODE_FLAGS } from "../../../lib/node-flags.ts";

const root = new URL("../../../", import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), "utf8");

test("the flags are Node options that bound the young generation", () => {
  assert.ok(PLATFORM_NODE_FLAGS.length > 0);
  for (const flag of PLATFORM_NODE_FLAGS) assert.match(flag, /^--[a-z-]+=\d+$/);
  assert.ok(PLATFORM_NODE_FLAGS.some((f) => f.startsWith("--max-semi-space-size=")));
});

test("npm start runs the runner with them, before the runner's own arguments", () => {
  const start = (JSON.parse(read("package.json")) as { scripts: { start: string } }).scripts.start;
  assert.ok(
    start.startsWith(`node ${PLATFORM_NODE_FLAGS.join(" ")} node_modules/moleculer/bin/moleculer-runner.js `),
    start,
  );
});

test("the image's entry point has them", () => {
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(read("docker/Dockerfile"))?.[1];
  assert.ok(entry, "an ENTRYPOINT in exec form");
  const argv = JSON.parse(entry) as string[];
  assert.deepEqual(argv.slice(0, 1 + PLATFORM_NODE_FLAGS.length), ["node", ...PLATFORM_NODE_FLAGS]);
  assert.equal(argv[1 + PLATFORM_NODE_FLAGS.length], "node_modules/moleculer/bin/moleculer-runner.js");
});

test("npm run cluster's runners get them (scripts/runner-process.ts)", () => {
  assert.match(read("scripts/runner-process.ts"), /\[\.\.\.PLATFORM_NODE_FLAGS, RUNNER,/);
});

test("the test harness's node processes get them (test/support/node-process.ts)", () => {
  assert.match(read("test/support/node-process.ts"), /\[\.\.\.PLATFORM_NODE_FLAGS, RUNNER,/);
});
