/**
 * The stores under test and the code they are loaded from. A tree is a checkout of the platform:
 * this one for SQLite, a worktree of the last nedb commit for the baseline (tree.ts). Each store,
 * its repositories, its broker config and its chat service are imported from their tree, so the
 * baseline runs exactly that commit's code. Two ways to open a store:
 *
 * - `thread`: the tree's `openStore({ dataDir })`, as the services open it; for SQLite and for
 *   nedb alike the store runs on a worker thread of its own.
 * - `main`: SQLite only, `new SqliteStore({ file })` on the calling thread.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import type * as Thread from "../../lib/store/embedded-thread.ts";
import type * as StoreIndex from "../../lib/store/index.ts";
import type * as Sqlite from "../../lib/store/sqlite.ts";
import type { Store } from "../../lib/store/types.ts";
import type * as AccountsRepo from "../../services/auth/accounts.repo.ts";
import type * as ChatsRepo from "../../services/chat/chats.repo.ts";
import type * as MessagesRepo from "../../services/chat/messages.repo.ts";
import type * as ReceiptsRepo from "../../services/chat/receipts.repo.ts";
import type * as ProfilesRepo from "../../services/profile/profiles.repo.ts";

export type Engine = "sqlite" | "nedb";
export type Placement = "thread" | "main";
export type Synchronous = "FULL" | "NORMAL";

export interface StoreTarget {
  /** Root of the checkout the store's code comes from. */
  tree: string;
  engine: Engine;
  placement: Placement;
  /** SQLite's `synchronous`; unset: the store's default (FULL). */
  synchronous?: Synchronous | undefined;
}

/** This checkout. */
export const THIS_TREE = path.resolve(import.meta.dirname, "../..");

/** A short name for tables and file names: `sqlite`, `sqlite-main`, `nedb`, `+ NORMAL`. */
export function targetName(t: Pick<StoreTarget, "engine" | "placement" | "synchronous">): string {
  const base = t.engine === "nedb" ? "nedb" : t.placement === "main" ? "sqlite-main" : "sqlite";
  return t.synchronous ? `${base} ${t.synchronous}` : base;
}

/** Imports a module of a tree by its path in the tree. */
export function fromTree<M>(tree: string, file: string): Promise<M> {
  return import(pathToFileURL(path.join(tree, file)).href) as Promise<M>;
}

export interface OpenedStore {
  store: Store;
  /** Collects the garbage of the store's thread, if it has one. */
  collectThread(): Promise<void>;
}

/** Loads the store's code (not timed as part of an open); the answer opens a DATA_DIR. */
export async function opener(target: StoreTarget): Promise<(dataDir: string) => Promise<OpenedStore>> {
  if (target.placement === "main") {
    if (target.engine !== "sqlite") throw new Error("only the SQLite store runs on the calling thread");
    const sqlite = await fromTree<typeof Sqlite>(target.tree, "lib/store/sqlite.ts");
    return async (dataDir) => ({
      store: new sqlite.SqliteStore({
        file: path.join(dataDir, sqlite.DATABASE_FILE),
        synchronous: target.synchronous,
      }),
      collectThread: async () => undefined,
    });
  }
  const index = await fromTree<typeof StoreIndex>(target.tree, "lib/store/index.ts");
  const thread = await fromTree<typeof Thread>(target.tree, "lib/store/embedded-thread.ts");
  return async (dataDir) => ({
    store: await index.openStore({ dataDir, embeddedSynchronous: target.synchronous }),
    collectThread: () => thread.collectStoreThreads(),
  });
}

export interface Repositories {
  accounts: AccountsRepo.AccountsRepository;
  profiles: ProfilesRepo.ProfilesRepository;
  chats: ChatsRepo.ChatsRepository;
  messages: MessagesRepo.MessagesRepository;
  receipts: ReceiptsRepo.ReceiptsRepository;
}

/** Loads the tree's repositories; the answer makes them over a store (indexes not declared: init()). */
export async function repositoriesOf(tree: string): Promise<(store: Store) => Repositories> {
  const [accounts, profiles, chats, messages, receipts] = await Promise.all([
    fromTree<typeof AccountsRepo>(tree, "services/auth/accounts.repo.ts"),
    fromTree<typeof ProfilesRepo>(tree, "services/profile/profiles.repo.ts"),
    fromTree<typeof ChatsRepo>(tree, "services/chat/chats.repo.ts"),
    fromTree<typeof MessagesRepo>(tree, "services/chat/messages.repo.ts"),
    fromTree<typeof ReceiptsRepo>(tree, "services/chat/receipts.repo.ts"),
  ]);
  return (store) => ({
    accounts: new accounts.AccountsRepository(store.collection("accounts")),
    profiles: new profiles.ProfilesRepository(store.collection("profiles")),
    chats: new chats.ChatsRepository(store.collection("chats")),
    messages: new messages.MessagesRepository(store.collection("messages")),
    receipts: new receipts.ReceiptsRepository(store.collection("receipts")),
  });
}
