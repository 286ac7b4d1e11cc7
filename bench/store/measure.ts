/**
 * A child of the store growth benchmark, one per run, in a fresh process: opens a filled DATA_DIR
 * and measures the reads of a chat node, one at a time, through the store's own repositories.
 *
 * - open: from the call that opens the store until its first query is answered, with what a chat
 *   node's start does in between (the chats, messages and receipts repositories' `init()`); the
 *   first query is a message by `_id` (the newest of the hottest chat), so a store that loads a
 *   collection on its first use (nedb) has loaded the messages.
 * - RSS (`process.memoryUsage().rss`, the whole process, the store's thread included) right after
 *   that first answer, and again after a full garbage collection of the main thread and of the
 *   store's thread (`--expose-gc`); and before the open, with the code loaded, so what the open
 *   itself added is the difference. The code is loaded before the clock starts.
 * - the newest 50 messages of a chat (`MessagesRepository.page` with the chat's lastSeq as the
 *   hint, as the chat service passes it) over chats of at least 50 messages; a page 1,000 messages
 *   deep (`before` = newest seq - 1,000) over chats of more than 1,050; the 200-chat user's chat
 *   list (`ChatsRepository.listForMember(user, 200)`). Each after a warm-up of 20 reads.
 * - event-loop delay (`perf_hooks.monitorEventLoopDelay`, resolution 1 ms) over all those reads;
 *   the event loop turns between two reads (setImmediate), as between a server's requests, so a
 *   read that holds the thread shows as a delay.
 */
import { readFile } from "node:fs/promises";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { announce, childArgs } from "../child.ts";
import { intBelow, type Manifest, type PlannedChat, seeded } from "./dataset.ts";
import { opener, repositoriesOf, type StoreTarget } from "./stores.ts";

export interface MeasureArgs {
  target: StoreTarget;
  dataDir: string;
  manifestFile: string;
  samples: number;
  seed: number;
}

export interface Latency {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ReadsResult {
  openMs: number;
  /** The openStore call (or constructor) alone. */
  openCallMs: number;
  /** The process with the store's code loaded, before the open. */
  rssBeforeOpenBytes: number;
  rssOpenBytes: number;
  rssGcBytes: number;
  heapUsedGcBytes: number;
  newestPage: Latency;
  deepPage: Latency | null;
  chatList: Latency;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** Delays the monitor recorded. */
  eventLoopSamples: number;
}

const WARMUP = 20;
const PAGE = 50;
const DEPTH = 1_000;
const LIST_LIMIT = 200;

const args = childArgs<MeasureArgs>();
const manifest = JSON.parse(await readFile(args.manifestFile, "utf8")) as Manifest;
const hottest = manifest.chats.reduce((a, b) => (b.lastSeq > a.lastSeq ? b : a));
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("measure.ts runs with --expose-gc");

const open = await opener(args.target);
const makeRepositories = await repositoriesOf(args.target.tree);
const rssBeforeOpenBytes = process.memoryUsage().rss;
const t0 = performance.now();
const { store, collectThread } = await open(args.dataDir);
const openCallMs = performance.now() - t0;
const repos = makeRepositories(store);
await Promise.all([repos.chats.init(), repos.messages.init(), repos.receipts.init()]);
const first = await repos.messages.findInChat(hottest.id, `${hottest.id}_${hottest.lastSeq}`);
const openMs = performance.now() - t0;
if (!first) throw new Error(`the newest message of chat ${hottest.id} is missing`);
const rssOpenBytes = process.memoryUsage().rss;
await collectThread();
gc();
const afterGc = process.memoryUsage();

const random = seeded(args.seed);
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const full = manifest.chats.filter((c) => c.lastSeq >= PAGE);
const newestPage = await sample(full.length > 0 ? full : [hottest], async (chat) => {
  const page = await repos.messages.page(chat.id, { limit: PAGE, seqHint: chat.lastSeq });
  expect(page.length === Math.min(PAGE, chat.lastSeq) && page.at(-1)?.seq === chat.lastSeq, chat, "newest");
});
const deep = manifest.chats.filter((c) => c.lastSeq > DEPTH + PAGE);
const deepPage =
  deep.length === 0
    ? null
    : await sample(deep, async (chat) => {
        const before = chat.lastSeq - DEPTH;
        const page = await repos.messages.page(chat.id, { before, limit: PAGE, seqHint: chat.lastSeq });
        expect(page.length === PAGE && page.at(-1)?.seq === before - 1, chat, "deep");
      });
const heavyChats = manifest.chats.filter((c) => c.members.includes(manifest.heavyUser)).length;
/**
 * The chat list as the tree's chat service reads it: one page (`listPage`, since the list pages by
 * cursor) or, in a tree from before that (the nedb baseline), `listForMember`.
 */
interface ChatLister {
  listPage?(userId: string, o: { at: number; limit: number }): Promise<{ chats: unknown[] }>;
  listForMember?(userId: string, limit: number): Promise<unknown[]>;
}
const lister = repos.chats as unknown as ChatLister;
const listChats = async (userId: string, limit: number): Promise<unknown[]> => {
  if (lister.listPage) return (await lister.listPage(userId, { at: Date.now(), limit })).chats;
  if (lister.listForMember) return lister.listForMember(userId, limit);
  throw new Error("the tree's ChatsRepository has neither listPage nor listForMember");
};
const chatList = await sample([hottest], async () => {
  const chats = await listChats(manifest.heavyUser, LIST_LIMIT);
  if (chats.length !== Math.min(LIST_LIMIT, heavyChats))
    throw new Error(`the chat list has ${chats.length} chats, not ${heavyChats}`);
});
eld.disable();
await store.close();

announce("result", {
  openMs,
  openCallMs,
  rssBeforeOpenBytes,
  rssOpenBytes,
  rssGcBytes: afterGc.rss,
  heapUsedGcBytes: afterGc.heapUsed,
  newestPage,
  deepPage,
  chatList,
  eventLoopP99Ms: eld.percentile(99) / 1e6,
  eventLoopMaxMs: eld.max / 1e6,
  eventLoopSamples: eld.count,
} satisfies ReadsResult);

/** `args.samples` reads, each of a chat drawn from `chats`, after the warm-up; their latency in ms. */
async function sample(chats: PlannedChat[], read: (chat: PlannedChat) => Promise<void>): Promise<Latency> {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + args.samples; i++) {
    const chat = chats[intBelow(random, chats.length)] as PlannedChat;
    const started = performance.now();
    await read(chat);
    if (i >= WARMUP) times.push(performance.now() - started);
    // As between the requests of a server: timers (the delay monitor's too) run between reads.
    await new Promise((resolve) => setImmediate(resolve));
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
  return { samples: times.length, p50: at(0.5), p99: at(0.99), max: times.at(-1) as number };
}

function expect(ok: boolean, chat: PlannedChat, what: string): void {
  if (!ok) throw new Error(`the ${what} page of chat ${chat.id} (${chat.lastSeq} messages) is wrong`);
}

process.exit(0);
