/**
 * One process per DATA_DIR: the embedded store's data dir holds a lock file naming the process
 * that uses it. A second process is refused with a message naming the directory and the holder;
 * a lock left by a process that died (SIGKILL, power cut) is taken over, since its pid is gone.
 * Inside one process every store of the dir shares the lock, released when the last one closes.
 */
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const LOCK_FILE = "social.lock";

interface Holder {
  pid: number;
  host: string;
  since: string;
}

export class DataDirLockedError extends Error {
  constructor(dataDir: string, holder: Holder) {
    super(
      `DATA_DIR ${dataDir} is in use by process ${holder.pid} on ${holder.host} (since ${holder.since}): ` +
        "one process per data dir. Stop that process, or give this one another DATA_DIR.",
    );
    this.name = "DataDirLockedError";
  }
}

export interface DataDirLock {
  release(): void;
}

const held = new Map<string, number>();

export function lockDataDir(dataDir: string): DataDirLock {
  const dir = path.resolve(dataDir);
  const users = held.get(dir) ?? 0;
  if (users === 0) take(dir);
  held.set(dir, users + 1);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      const left = (held.get(dir) ?? 1) - 1;
      if (left > 0) {
        held.set(dir, left);
        return;
      }
      held.delete(dir);
      const file = path.join(dir, LOCK_FILE);
      if (readHolder(file)?.pid === process.pid) unlinkSync(file);
    },
  };
}

/** Who holds the dir now, if a live process does. */
export function dataDirHolder(dataDir: string): Holder | undefined {
  const holder = readHolder(path.join(path.resolve(dataDir), LOCK_FILE));
  return holder && isAlive(holder) ? holder : undefined;
}

function take(dir: string): void {
  const file = path.join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me), { flag: "wx", mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = readHolder(file);
    if (holder && holder.pid !== process.pid && isAlive(holder)) throw new DataDirLockedError(dir, holder);
    // Left by a process that is gone (or unreadable, half written by one that died): taken over.
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  const holder = readHolder(file);
  throw new DataDirLockedError(dir, holder ?? { pid: 0, host: "unknown", since: "unknown" });
}

function readHolder(file: string): Holder | undefined {
  try {
    const holder = JSON.parse(readFileSync(file, "utf8")) as Partial<Holder>;
    if (typeof holder.pid !== "number") return undefined;
    return { pid: holder.pid, host: String(holder.host), since: String(holder.since) };
  } catch {
    return undefined;
  }
}

/** A holder on another host cannot be checked, so it counts as alive. */
function isAlive(holder: Holder): boolean {
  if (holder.host !== os.hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
