/**
 * Files that hold secrets are kept to the process's own user: folders 0700, files 0600. The embedded
 * store's folder (DATA_DIR) is one: `social.sqlite` and its `-wal`/`-shm` hold the private signing
 * keys and the password hashes, and the backups it moves aside (`nedb-backup-*`, `replaced-*`) the
 * same. A path found open to group or others is narrowed at start with a warning naming it.
 *
 * Synchronous on purpose: run first in a service's started(), it finishes before any other service
 * of the process opens a file in the folder. Symbolic links are left alone (not followed). Where the
 * mode cannot be changed (a file of another user, a file system without Unix modes) it warns and goes
 * on: the node still starts, and the warning says what to fix.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, type Stats } from "node:fs";
import path from "node:path";

export const SECRET_DIR_MODE = 0o700;
export const SECRET_FILE_MODE = 0o600;
const OPEN_TO_OTHERS = 0o077;

export type Warn = (message: string) => void;

/**
 * Folders of DATA_DIR that are narrowed but not walked: `files` (the disk file store) may hold
 * millions of uploads, which it writes 0600 itself, and walking them would make every start
 * slower as the community grows.
 */
export const UNWALKED_DIRS = ["files"];

/**
 * Creates the folder (0700) when missing, then narrows it and everything in it (but the insides
 * of UNWALKED_DIRS); see securePath.
 */
export function secureDir(dir: string, warn: Warn): string[] {
  mkdirSync(dir, { recursive: true, mode: SECRET_DIR_MODE });
  if (process.platform === "win32") return [];
  const root = path.resolve(dir);
  const fixed: string[] = [];
  narrow(root, lstatSync(root), SECRET_DIR_MODE, warn, fixed);
  for (const name of readdirSync(root)) {
    const target = path.join(root, name);
    if (UNWALKED_DIRS.includes(name)) {
      const stats = lstatSync(target);
      if (stats.isDirectory()) narrow(target, stats, SECRET_DIR_MODE, warn, fixed);
    } else walk(target, warn, fixed);
  }
  return fixed;
}

/**
 * Narrows a folder (and, recursively, what it holds) or a file to the owner alone. Resolves the
 * paths it changed; a path that does not exist is skipped.
 */
export function securePath(target: string, warn: Warn): string[] {
  if (process.platform === "win32") return [];
  const fixed: string[] = [];
  walk(path.resolve(target), warn, fixed);
  return fixed;
}

function walk(target: string, warn: Warn, fixed: string[]): void {
  let stats: Stats;
  try {
    stats = lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (stats.isDirectory()) {
    narrow(target, stats, SECRET_DIR_MODE, warn, fixed);
    for (const name of readdirSync(target)) walk(path.join(target, name), warn, fixed);
  } else if (stats.isFile()) {
    narrow(target, stats, SECRET_FILE_MODE, warn, fixed);
  }
}

function narrow(target: string, stats: Stats, mode: number, warn: Warn, fixed: string[]): void {
  const current = stats.mode & 0o777;
  if ((current & OPEN_TO_OTHERS) === 0) return;
  const was = current.toString(8).padStart(4, "0");
  const want = mode.toString(8).padStart(4, "0");
  try {
    chmodSync(target, mode);
  } catch (err) {
    warn(
      `${target} is open to group or others (mode ${was}) and could not be set to ${want}: ${String(err)}`,
    );
    return;
  }
  if ((lstatSync(target).mode & OPEN_TO_OTHERS) !== 0) {
    warn(`${target} is open to group or others (mode ${was}); its file system keeps it so, it holds secrets`);
    return;
  }
  fixed.push(target);
  warn(`${target} was open to group or others (mode ${was}); set to ${want}, as it holds secrets`);
}
