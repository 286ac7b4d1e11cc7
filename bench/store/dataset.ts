/**
 * The chat-shaped data the store growth benchmark writes, the same for every store and every run:
 * everything comes from a seeded generator, so the nedb and SQLite stores of one size hold the
 * same users, chats and messages. 1,000 users; 2,000 chats, 1,200 direct and 800 groups of 3 to 20
 * members; user 0 (the "heavy" user) is in 200 of them (100 direct, 100 groups). Messages go to a
 * chat with a Zipf weight of its rank (1 / rank; the ranks shuffled over the chats): the hottest chat
 * gets about an eighth of all messages, the 100th about 1,200 of a million, the 1,000th about 120.
 * Lengths: 60 % 10-60 characters, 30 % 60-200, 8 % 200-800, 2 % 800-2,000 (mean about 115).
 */

export const USERS = 1_000;
export const DIRECT_CHATS = 1_200;
export const GROUP_CHATS = 800;
export const HEAVY_DIRECT = 100;
export const HEAVY_GROUPS = 100;
export const MIN_GROUP = 3;
export const MAX_GROUP = 20;
/** Synthetic time of the first message, and the time between two messages. */
export const FIRST_MESSAGE_AT = Date.UTC(2026, 0, 1);
export const MESSAGE_EVERY_MS = 2_000;

export interface PlannedChat {
  id: string;
  type: "direct" | "group";
  members: string[];
  /** Zipf rank, 1 the hottest. */
  rank: number;
  /** Messages stored so far (their seqs are 1..lastSeq). */
  lastSeq: number;
}

/** What the fill leaves beside a DATA_DIR for the measuring processes. */
export interface Manifest {
  users: string[];
  heavyUser: string;
  chats: PlannedChat[];
  messages: number;
}

export type Random = () => number;

/** mulberry32: a small, fast, seeded generator of numbers in [0, 1). */
export function seeded(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function intBelow(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/** A version-4-shaped UUID from the generator. */
export function uuidOf(random: Random): string {
  const hex = Array.from({ length: 32 }, () => intBelow(random, 16).toString(16));
  hex[12] = "4";
  hex[16] = (8 + intBelow(random, 4)).toString(16);
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `count` distinct picks from `from`, none of them in `except`. */
function distinct(random: Random, from: string[], count: number, except: Set<string>): string[] {
  const picked = new Set<string>();
  while (picked.size < count) {
    const candidate = from[intBelow(random, from.length)] as string;
    if (!except.has(candidate)) picked.add(candidate);
  }
  return [...picked];
}

function groupSize(random: Random): number {
  return MIN_GROUP + Math.floor((MAX_GROUP - MIN_GROUP + 1) * random() ** 2);
}

/** Users and chats, before any message. */
export function planChats(seed: number): Manifest {
  const random = seeded(seed);
  const users = Array.from({ length: USERS }, () => uuidOf(random));
  const heavy = users[0] as string;
  const others = users.slice(1);
  const chats: Omit<PlannedChat, "rank">[] = [];
  const pairs = new Set<string>();
  const addDirect = (a: string, b: string) => {
    const key = [a, b].sort().join(":");
    if (pairs.has(key)) return false;
    pairs.add(key);
    chats.push({ id: uuidOf(random), type: "direct", members: [a, b].sort(), lastSeq: 0 });
    return true;
  };
  for (const other of others.slice(0, HEAVY_DIRECT)) addDirect(heavy, other);
  while (chats.length < DIRECT_CHATS) {
    const [a, b] = distinct(random, others, 2, new Set());
    addDirect(a as string, b as string);
  }
  for (let i = 0; i < GROUP_CHATS; i++) {
    const withHeavy = i < HEAVY_GROUPS;
    const size = groupSize(random);
    const rest = distinct(random, others, withHeavy ? size - 1 : size, new Set());
    chats.push({
      id: uuidOf(random),
      type: "group",
      members: withHeavy ? [heavy, ...rest] : rest,
      lastSeq: 0,
    });
  }
  const ranks = chats.map((_, i) => i + 1);
  for (let i = ranks.length - 1; i > 0; i--) {
    const j = intBelow(random, i + 1);
    [ranks[i], ranks[j]] = [ranks[j] as number, ranks[i] as number];
  }
  return {
    users,
    heavyUser: heavy,
    chats: chats.map((chat, i) => ({ ...chat, rank: ranks[i] as number })),
    messages: 0,
  };
}

/** Picks a chat index by its Zipf weight: a binary search over the cumulative weights. */
export function chatPicker(chats: PlannedChat[], random: Random): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (const chat of chats) {
    total += 1 / chat.rank;
    cumulative.push(total);
  }
  return () => {
    const x = random() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((cumulative[mid] as number) < x) low = mid + 1;
      else high = mid;
    }
    return low;
  };
}

const WORDS = (
  "the a to and of I you it is in that for on we this be was with have are not can do so at " +
  "what but just my me if know get like all about will now they up out one time good think see " +
  "yes no ok okay thanks tomorrow today meeting later call send file link photo video please " +
  "sure maybe lunch dinner weekend project deadline review code deploy release bug fix test " +
  "server client update message chat group idea plan trip ticket price done working home office"
).split(" ");

export function messageLength(random: Random): number {
  const r = random();
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  if (r < 0.6) return between(10, 60);
  if (r < 0.9) return between(61, 200);
  if (r < 0.98) return between(201, 800);
  return between(801, 2_000);
}

/** Words of the vocabulary up to `length` characters, never blank. */
export function messageText(random: Random, length: number): string {
  let text = "";
  while (text.length < length) {
    const word = WORDS[intBelow(random, WORDS.length)] as string;
    text += text ? ` ${word}` : word[0]?.toUpperCase() + word.slice(1);
    if (random() < 0.08) text += random() < 0.5 ? "." : "?";
  }
  return text.slice(0, length).trimEnd() || "ok";
}

/** A send's clientMsgId: a UUID, as the client library makes them (client/chat-socket.ts). */
export function clientMsgIdOf(random: Random): string {
  return uuidOf(random);
}
