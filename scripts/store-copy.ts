/**
 * `npm run store:copy -- --from A --to B`: copies a whole store into another, each side a DATA_DIR
 * (the embedded store) or a `mongodb://` URL, to move a community from `npm start` onto a cluster's
 * MongoDB, or back (docs/deploy.md). Both sides are opened as the platform opens them (openStore),
 * so an embedded store that a running platform holds is refused with that store's own message.
 *
 * Every collection is copied as it is, in `_id` order, a batch at a time (`--batch`, 1000): the
 * same `_id`s, so a message keeps its `chatId_seq` and `seq` and a chat its `lastSeq`. The target's
 * indexes are declared first, from the repositories' own `indexes()`, so its unique indexes hold
 * while it fills.
 *
 * A marker in the target (`store_copy_progress`) names the source and keeps, per collection, the
 * last `_id` of the batches stored and whether it is done; a rerun after a kill continues after
 * that `_id`, and of the batch that was in flight stores only what is missing. (The marker, not
 * the target's greatest `_id`, says where to go on: with `--force` that may be a document the
 * target had before.) A target that holds documents and no marker of the same source is refused,
 * unless `--force`: then documents whose `_id` the target already has are left as they are and
 * counted as present. The marker is emptied once every collection is done (the Store interface
 * cannot drop a collection, so an empty `store_copy_progress` stays). Last, the counts of both
 * sides are compared per collection, leaving out documents past a TTL index's expiry (either side
 * may remove those at any moment); any difference makes the exit status 1.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../lib/store/index.ts";
import type { Collection, Doc, IndexSpec, Store } from "../lib/store/types.ts";
import { AccountsRepository } from "../services/auth/accounts.repo.ts";
import { RefreshTokensRepository } from "../services/auth/refresh-tokens.repo.ts";
import { SessionsRepository } from "../services/auth/sessions.repo.ts";
import { SigningKeysRepository } from "../services/auth/signing-keys.repo.ts";
import { ChatsRepository } from "../services/chat/chats.repo.ts";
import { MessagesRepository } from "../services/chat/messages.repo.ts";
import { ReceiptsRepository } from "../services/chat/receipts.repo.ts";
import { ProfilesRepository } from "../services/profile/profiles.repo.ts";

export const PROGRESS_COLLECTION = "store_copy_progress";
const PROGRESS_ID = "progress";
export const DEFAULT_BATCH = 1000;
/** Progress lines of one collection come at most this often (besides its first and last). */
const PROGRESS_INTERVAL_MS = 2_000;

type RepositoryClass = new (collection: Collection<never>) => { indexes(): IndexSpec[] };

/** The collection each service's started() gives each repository. */
const REPOSITORIES: Record<string, RepositoryClass> = {
  accounts: AccountsRepository,
  sessions: SessionsRepository,
  refresh_tokens: RefreshTokensRepository,
  signing_keys: SigningKeysRepository,
  profiles: ProfilesRepository,
  chats: ChatsRepository,
  messages: MessagesRepository,
  receipts: ReceiptsRepository,
};

export interface CopyOptions {
  /** Names the source in the target's marker: a rerun resumes only a copy from the same source. */
  source: string;
  batch?: number | undefined;
  force?: boolean | undefined;
}

export type CopyLog = (line: string) => void;

interface CollectionProgress {
  done: boolean;
  /** The last `_id` of the batches known to be stored. */
  after?: string;
  copied: number;
  /** Documents the target already had (`--force`). */
  present: number;
}

interface ProgressMarker extends Doc {
  source: string;
  startedAt: Date;
  force: boolean;
  collections: Record<string, CollectionProgress>;
}

export interface CollectionReport {
  name: string;
  source: number;
  target: number;
  /** Documents past their TTL expiry on each side, left out of `source` and `target`. */
  expired: { source: number; target: number } | undefined;
}

export interface CopyReport {
  collections: CollectionReport[];
  equal: boolean;
}

/** The copy was not started: the target or the source is not in a state to copy. */
export class CopyRefusedError extends Error {
  override readonly name = "CopyRefusedError";
}

export async function copyStore(
  from: Store,
  to: Store,
  options: CopyOptions,
  log: CopyLog,
): Promise<CopyReport> {
  const batch = options.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`batch must be a positive integer, not ${batch}`);
  const listed = await from.collectionNames();
  if (listed.includes(PROGRESS_COLLECTION) && (await from.collection(PROGRESS_COLLECTION).count({})) > 0) {
    throw new CopyRefusedError(
      `${options.source} holds the marker of a copy into it that has not finished; finish that copy first`,
    );
  }
  const names = listed.filter((name) => name !== PROGRESS_COLLECTION).sort();
  if (names.length === 0)
    throw new CopyRefusedError(`${options.source} holds no collections: nothing to copy`);
  const markers = to.collection<ProgressMarker>(PROGRESS_COLLECTION);
  const { marker, resumed } = await startOrResume(to, markers, options, log);
  const save = () =>
    markers.updateOne(
      { _id: PROGRESS_ID },
      { $set: { collections: marker.collections } },
      { singleWriter: true },
    );
  for (const name of names) {
    const indexes = declaredIndexes(to, name);
    if (indexes.length > 0) await to.collection(name).ensureIndexes(indexes);
  }
  for (const name of names) {
    marker.collections[name] ??= { done: false, copied: 0, present: 0 };
    const progress = marker.collections[name];
    if (progress.done) {
      log(`${name}: done in an earlier run (${progress.copied} copied, ${progress.present} present)`);
      continue;
    }
    const copy = { batch, force: marker.force, resumed };
    await copyCollection(from.collection(name), to.collection(name), progress, copy, save, log);
  }
  await markers.deleteMany({});
  const report = await compareCounts(from, to, names);
  for (const line of formatReport(report)) log(line);
  return report;
}

async function startOrResume(
  to: Store,
  markers: Collection<ProgressMarker>,
  options: CopyOptions,
  log: CopyLog,
): Promise<{ marker: ProgressMarker; resumed: boolean }> {
  const existing = await markers.findOne({ _id: PROGRESS_ID });
  if (existing?.source === options.source) {
    log(`Resuming the copy from ${options.source} started at ${existing.startedAt.toISOString()}`);
    return { marker: existing, resumed: true };
  }
  const filled = await nonEmptyCollections(to);
  if (filled.length > 0) {
    const contents = filled.map(([name, count]) => `${name}: ${count}`).join(", ");
    if (!options.force) {
      const unfinished = existing ? ` and an unfinished copy from ${existing.source}` : "";
      throw new CopyRefusedError(
        `The target is not empty (${contents})${unfinished}. Copy into an empty database or DATA_DIR, ` +
          "or give --force to copy on top: documents whose _id the target already has are then left as they are.",
      );
    }
    log(
      `--force: the target already holds documents (${contents}); those whose _id the source also has ` +
        "are left as they are and counted as present",
    );
  }
  const marker: ProgressMarker = {
    _id: PROGRESS_ID,
    source: options.source,
    startedAt: new Date(),
    force: options.force === true,
    collections: {},
  };
  await markers.deleteMany({});
  await markers.insertOne(marker);
  log(`Copying from ${options.source}`);
  return { marker, resumed: false };
}

async function nonEmptyCollections(store: Store): Promise<[string, number][]> {
  const filled: [string, number][] = [];
  for (const name of (await store.collectionNames()).sort()) {
    if (name === PROGRESS_COLLECTION) continue;
    const count = await store.collection(name).count({});
    if (count > 0) filled.push([name, count]);
  }
  return filled;
}

async function copyCollection(
  source: Collection<Doc>,
  target: Collection<Doc>,
  progress: CollectionProgress,
  copy: { batch: number; force: boolean; resumed: boolean },
  save: () => Promise<unknown>,
  log: CopyLog,
): Promise<void> {
  const total = await source.count({});
  const started = Date.now();
  let handled = 0;
  let loggedAt = 0;
  const line = () => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? Math.round(handled / seconds) : handled;
    const present = progress.present > 0 ? `, ${progress.present} already in the target` : "";
    return `${source.name}: ${progress.copied + progress.present}/${total}${present} (${rate}/s)`;
  };
  if (total === 0 && progress.after === undefined) {
    progress.done = true;
    await save();
    log(`${source.name}: empty`);
    return;
  }
  for (;;) {
    const filter = progress.after === undefined ? {} : { _id: { $gt: progress.after } };
    const docs = await source.find(filter, { sort: { _id: 1 }, limit: copy.batch });
    const last = docs.at(-1);
    if (!last) break;
    // A resumed run's first batch may hold what the killed run was writing when it stopped.
    const stored = await insertMissing(target, docs, copy.force || (copy.resumed && handled === 0));
    // Without --force the target held none of these before this copy: whatever it has, it copied.
    progress.copied += copy.force ? stored : docs.length;
    progress.present += copy.force ? docs.length - stored : 0;
    progress.after = last._id;
    await save();
    handled += docs.length;
    if (docs.length < copy.batch) break;
    if (loggedAt === 0 || Date.now() - loggedAt >= PROGRESS_INTERVAL_MS) {
      log(line());
      loggedAt = Date.now();
    }
  }
  progress.done = true;
  await save();
  log(`${line()}, done`);
}

/**
 * Inserts the documents of the batch the target does not hold yet, in order, and resolves how
 * many. Which it holds is looked up first when some may be there (`--force`, or the batch a killed
 * run was writing), rather than found by inserting them: FerretDB may stall on a series of
 * refused inserts. A refusal stops the copy: a unique index on another field than `_id` holds a
 * different document with the same value, so the target does not hold this store's data.
 */
async function insertMissing(target: Collection<Doc>, docs: Doc[], mayBePresent: boolean): Promise<number> {
  let missing = docs;
  if (mayBePresent) {
    const found = await target.find({ _id: { $in: docs.map((doc) => doc._id) } });
    const present = new Set(found.map((doc) => doc._id));
    missing = docs.filter((doc) => !present.has(doc._id));
  }
  const stored = await target.insertMany(missing);
  const refused = missing[stored];
  if (refused) {
    throw new Error(
      `${target.name}: the target refused ${refused._id} by a unique index: it holds another document ` +
        "with the same value of a unique field",
    );
  }
  return stored;
}

/** The indexes the collection's repository declares; none for a collection no repository uses. */
function declaredIndexes(store: Store, name: string): IndexSpec[] {
  const repository = REPOSITORIES[name];
  return repository ? new repository(store.collection(name)).indexes() : [];
}

/** The field and seconds of the collection's TTL index, if its repository declares one. */
function ttlOf(store: Store, name: string): { field: string; seconds: number } | undefined {
  const spec = declaredIndexes(store, name).find((index) => index.expireAfterSeconds !== undefined);
  const field = spec ? Object.keys(spec.fields)[0] : undefined;
  return spec && field ? { field, seconds: spec.expireAfterSeconds ?? 0 } : undefined;
}

export async function compareCounts(from: Store, to: Store, names: string[]): Promise<CopyReport> {
  const targetNames = (await to.collectionNames()).filter((name) => name !== PROGRESS_COLLECTION);
  const all = [...new Set([...names, ...targetNames])].sort();
  const now = Date.now();
  const count = async (store: Store, has: boolean, name: string) => {
    if (!has) return { total: 0, expired: 0 };
    const collection = store.collection(name);
    const ttl = ttlOf(store, name);
    const [total, expired] = await Promise.all([
      collection.count({}),
      ttl ? collection.count({ [ttl.field]: { $lt: new Date(now - ttl.seconds * 1000) } }) : 0,
    ]);
    return { total, expired };
  };
  const collections: CollectionReport[] = [];
  for (const name of all) {
    const [source, target] = await Promise.all([
      count(from, names.includes(name), name),
      count(to, targetNames.includes(name), name),
    ]);
    collections.push({
      name,
      source: source.total - source.expired,
      target: target.total - target.expired,
      expired: ttlOf(to, name) ? { source: source.expired, target: target.expired } : undefined,
    });
  }
  return { collections, equal: collections.every((c) => c.source === c.target) };
}

export function formatReport(report: CopyReport): string[] {
  const width = Math.max(10, ...report.collections.map((c) => c.name.length));
  const row = (name: string, source: string, target: string, note: string) =>
    `${name.padEnd(width)}  ${source.padStart(10)}  ${target.padStart(10)}  ${note}`.trimEnd();
  const lines = [row("collection", "source", "target", "")];
  for (const c of report.collections) {
    const expired =
      c.expired && c.expired.source + c.expired.target > 0
        ? ` (past expiry, left out: ${c.expired.source} in the source, ${c.expired.target} in the target)`
        : "";
    lines.push(
      row(
        c.name,
        String(c.source),
        String(c.target),
        (c.source === c.target ? "equal" : "DIFFERS") + expired,
      ),
    );
  }
  lines.push(report.equal ? "Every collection has as many documents on both sides." : "Some counts differ.");
  return lines;
}

const USAGE = `Usage: npm run store:copy -- --from <DATA_DIR | mongodb://...> --to <DATA_DIR | mongodb://...> [--batch N] [--force]

Copies every collection of one store into another: the embedded store of a DATA_DIR, or a MongoDB
database. The platform must be stopped on both. A rerun with the same --from and --to after an
interruption continues the copy. A non-empty target is refused unless --force is given; then
documents whose _id the target already has are left as they are. Exits 1 when the counts of the
two sides differ at the end.

  --batch N   documents per read and write (default ${DEFAULT_BATCH})
  --force     copy into a target that already holds documents`;

function isMongoUrl(spec: string): boolean {
  return /^mongodb(\+srv)?:\/\//.test(spec);
}

/** How the marker names a side: a URL without credentials or options, or an absolute path. */
export function describeSide(spec: string): string {
  if (!isMongoUrl(spec)) return path.resolve(spec);
  const match = /^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?([^/?]*)(?:\/([^?]*))?/.exec(spec);
  return `${match?.[1] ?? ""}${match?.[2] ?? ""}/${match?.[3] || "social"}`;
}

async function openSide(spec: string, role: "from" | "to"): Promise<Store> {
  if (isMongoUrl(spec)) return openStore({ mongoUrl: spec, dataDir: "" });
  if (role === "from") {
    const found = await stat(spec).catch(() => undefined);
    if (!found?.isDirectory()) throw new CopyRefusedError(`--from ${spec}: no such DATA_DIR`);
  }
  return openStore({ dataDir: spec });
}

function parseCommandLine(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        batch: { type: "string" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new CopyRefusedError(`${err instanceof Error ? err.message : err} (see --help)`);
  }
}

async function main(args: string[]): Promise<number> {
  const { values } = parseCommandLine(args);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.from || !values.to) {
    console.error(USAGE);
    return 2;
  }
  const batch = values.batch === undefined ? DEFAULT_BATCH : Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1)
    throw new CopyRefusedError(`--batch ${values.batch}: not a positive integer`);
  const source = describeSide(values.from);
  if (source === describeSide(values.to)) throw new CopyRefusedError("--from and --to name the same store");
  const from = await openSide(values.from, "from");
  try {
    const to = await openSide(values.to, "to");
    try {
      console.log(`${source} -> ${describeSide(values.to)}`);
      const report = await copyStore(from, to, { source, batch, force: values.force }, (line) =>
        console.log(line),
      );
      return report.equal ? 0 : 1;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

/** An error as one line for the operator: its message, and its cause's (a store that is down). */
function explain(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
    },
    (err: unknown) => {
      console.error(explain(err));
      process.exitCode = 1;
    },
  );
}
