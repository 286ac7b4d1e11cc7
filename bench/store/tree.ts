/**
 * The nedb baseline's code: a git worktree of NEDB_COMMIT, the last commit with the nedb store,
 * with its own node_modules. `--nedb-tree PATH` names an existing one; without it the benchmark
 * makes one in `.tmp/bench-store/nedb-<commit>` of this checkout (git-ignored), once:
 *
 *   git worktree add --detach .tmp/bench-store/nedb-d2a92c0 d2a92c0
 *   (cd .tmp/bench-store/nedb-d2a92c0 && npm ci --ignore-scripts)
 *
 * and reuses it on later runs. `git worktree remove .tmp/bench-store/nedb-d2a92c0` deletes it.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

export const NEDB_COMMIT = "d2a92c0";

const run = promisify(execFile);

/** Files a usable tree has: the store's entry point and the installed nedb package. */
function isReady(tree: string): boolean {
  return (
    existsSync(path.join(tree, "lib/store/index.ts")) &&
    existsSync(path.join(tree, "lib/store/embedded.ts")) &&
    existsSync(path.join(tree, "node_modules/@seald-io/nedb/package.json")) &&
    existsSync(path.join(tree, "node_modules/moleculer/package.json"))
  );
}

export async function nedbTree(repo: string, given: string | undefined, log: (m: string) => void) {
  if (given) {
    const tree = path.resolve(given);
    if (!isReady(tree)) {
      throw new Error(`--nedb-tree ${tree} is not a checkout of ${NEDB_COMMIT} with node_modules installed`);
    }
    return tree;
  }
  const tree = path.join(repo, ".tmp", "bench-store", `nedb-${NEDB_COMMIT}`);
  if (!existsSync(path.join(tree, ".git"))) {
    log(`making the nedb baseline's worktree: git worktree add --detach ${tree} ${NEDB_COMMIT}`);
    await run("git", ["-C", repo, "worktree", "add", "--detach", tree, NEDB_COMMIT]);
  }
  const head = (await run("git", ["-C", tree, "rev-parse", "HEAD"])).stdout.trim();
  if (!head.startsWith(NEDB_COMMIT)) throw new Error(`${tree} is at ${head}, not ${NEDB_COMMIT}`);
  if (!isReady(tree)) {
    log(`installing its packages: npm ci --ignore-scripts in ${tree}`);
    await run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund"], {
      cwd: tree,
      maxBuffer: 64 * 1024 * 1024,
    });
  }
  if (!isReady(tree)) throw new Error(`${tree} is still missing its store or its packages after npm ci`);
  return tree;
}
