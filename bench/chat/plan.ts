/**
 * The pure parts of the chat benchmarks (bench/chat/run.ts): what they seed, drawn from a seeded
 * generator so every run and every store gets the same chats, messages and reactions, and the
 * checks and statistics of what they measure. No I/O here (test/unit/bench/chat.test.ts).
 */
import { intBelow, type Random, seeded } from "../store/dataset.ts";

export { seeded };

/** Nearest-rank percentile (q in 0-1) of an ascending array, as the store benchmark takes it; NaN when empty. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export interface Latency {
  samples: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

export function latencyOf(times: number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    mean: sorted.length ? sorted.reduce((s, t) => s + t, 0) / sorted.length : Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/**
 * How many times a client follows `nextCursor` from the first page to reach the page that starts
 * after `depth` chats, with pages of `limit`: 80 for the page after 4,000 chats with pages of 50.
 */
export function followsToDepth(depth: number, limit: number): number {
  if (!Number.isInteger(depth) || depth < 0 || !Number.isInteger(limit) || limit < 1) {
    throw new Error(`a depth of ${depth} chats in pages of ${limit}`);
  }
  return Math.ceil(depth / limit);
}

/** Fisher-Yates with the seeded generator; answers a new array. */
export function shuffled<T>(items: readonly T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = intBelow(random, i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** `count` distinct integers below `n`, none in `not`. */
export function distinctBelow(random: Random, n: number, count: number, not: ReadonlySet<number>): number[] {
  if (count > n - not.size) throw new Error(`${count} distinct numbers below ${n} without ${not.size}`);
  const picked = new Set<number>();
  while (picked.size < count) {
    const x = intBelow(random, n);
    if (!not.has(x)) picked.add(x);
  }
  return [...picked];
}

/** One chat of the chat-list benchmark's heavy user; users are indexes into the other users. */
export interface ListChat {
  type: "direct" | "group";
  /** The other members (1 for a direct chat, 2-4 for a group). */
  others: number[];
  /** The senders of its messages, in order: -1 is the heavy user, else an index into `others`' users. */
  senders: number[];
  /** Which of its messages (by position) mention the heavy user. */
  mentions: boolean[];
  /** The heavy user reads the chat up to its newest message after the sends. */
  read: boolean;
  /** The heavy user mutes the chat (for always). */
  muted: boolean;
}

export interface ListPlan {
  chats: ListChat[];
  /** The order of all sends: [chat index, message position], shuffled over the chats. */
  sends: [number, number][];
}

/**
 * The heavy user's `chats` chats over `users` other users: half direct (each with another user, so
 * `users` >= chats / 2), half groups of 3-5; 1-3 messages each, a fifth of them the heavy user's own,
 * a tenth of the others' mentioning the heavy user; 30 % read up to the end, 5 % muted. The sends are
 * shuffled, so the order of last activity is not the order of creation.
 */
export function planChatList(seed: number, chats: number, users: number): ListPlan {
  const directs = Math.floor(chats / 2);
  if (users < directs || users < 4) throw new Error(`${chats} chats need at least ${directs} other users`);
  const random = seeded(seed);
  // The two kinds interleaved at random in the order of creation.
  const kinds = shuffled(
    Array.from({ length: chats }, (_, i) => (i < directs ? "direct" : "group") as ListChat["type"]),
    random,
  );
  let partner = 0;
  const plan = kinds.map((type): ListChat => {
    const others =
      type === "direct" ? [partner++] : distinctBelow(random, users, 2 + intBelow(random, 3), new Set());
    const senders = Array.from({ length: 1 + intBelow(random, 3) }, () =>
      random() < 0.2 ? -1 : (others[intBelow(random, others.length)] as number),
    );
    return {
      type,
      others,
      senders,
      mentions: senders.map((s) => s !== -1 && random() < 0.1),
      read: random() < 0.3,
      muted: random() < 0.05,
    };
  });
  // Every message once, shuffled over the chats; a chat's k-th send in that order is its k-th message.
  const sends = shuffled(
    plan.flatMap((c, i) => c.senders.map(() => i)),
    random,
  );
  const next = new Array<number>(chats).fill(0);
  return { chats: plan, sends: sends.map((i) => [i, (next[i] as number)++] as [number, number]) };
}

/** The list's view of a chat that the order check needs (ChatView's fields). */
export interface ListedChat {
  id: string;
  createdAt: string;
  lastMessage: { createdAt: string } | null;
}

/** A chat's last activity: its newest message's time, or its creation for a chat without messages. */
export function activityOf(chat: ListedChat): number {
  return Date.parse(chat.lastMessage?.createdAt ?? chat.createdAt);
}

/**
 * What is wrong with a walk over the list, as sentences: chats listed twice, chats missing (of
 * `expected` ids, when given: the walk went to the end), and places where the order by last activity (newest first) goes backwards.
 * Ties are allowed in any order: the contract breaks them by id, and ids are random here.
 */
export function listProblems(listed: ListedChat[], expected?: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  let twice = 0;
  let backwards = 0;
  let firstBackwards = "";
  for (const [i, chat] of listed.entries()) {
    if (seen.has(chat.id)) twice += 1;
    seen.add(chat.id);
    const before = listed[i - 1];
    if (before && activityOf(chat) > activityOf(before)) {
      backwards += 1;
      firstBackwards ||= `chat ${i + 1} (${chat.id}) is newer than chat ${i}`;
    }
  }
  // Without the expected ids (a walk that stopped early), only duplicates and the order are checked.
  const missing = expected ? [...expected].filter((id) => !seen.has(id)).length : 0;
  const unknown = expected ? [...seen].filter((id) => !expected.has(id)).length : 0;
  if (twice) problems.push(`${twice} chats listed twice`);
  if (missing) problems.push(`${missing} of ${expected?.size} chats missing`);
  if (unknown) problems.push(`${unknown} chats listed that were not seeded`);
  if (backwards) problems.push(`${backwards} places out of order, the first: ${firstBackwards}`);
  return problems;
}

/**
 * 20 distinct emoji, each one grapheme of Unicode's RGI set: most single code points, and a
 * presentation-selector form (U+2764 U+FE0F), a skin tone and a ZWJ sequence among them.
 */
export const EMOJI = [
  "👍",
  "❤️",
  "😂",
  "😮",
  "😢",
  "🙏",
  "🎉",
  "🔥",
  "👀",
  "💯",
  "✅",
  "🚀",
  "🤔",
  "👏",
  "😍",
  "🙌",
  "💪",
  "👍🏽",
  "🧑‍💻",
  "⭐",
] as const;

export interface ReactionsPlan {
  /** Messages sent before the replies (the originals some replies answer). */
  originals: number;
  /** For each reply, the index (0-based, over all messages of the chat in order) of the message it answers. */
  replyTo: number[];
  /** For each reply, its reactions in the order they are made: [member index, emoji index]. */
  reactions: [number, number][][];
}

/**
 * The reacted chat of the reactions benchmark: `originals` plain messages, then `replies` replies,
 * each to a random earlier message (an original or an earlier reply), each reply with all
 * `emoji` emoji, each used by `perEmoji` distinct members of `members`, the reactions of a message
 * made in a shuffled order (so an emoji's first use, which fixes its place, varies by message).
 */
export function planReactions(
  seed: number,
  shape: { originals: number; replies: number; members: number; emoji: number; perEmoji: number },
): ReactionsPlan {
  const { originals, replies, members, emoji, perEmoji } = shape;
  if (originals < 1 || perEmoji > members || emoji > EMOJI.length) {
    throw new Error(`cannot plan ${JSON.stringify(shape)}`);
  }
  const random = seeded(seed);
  const replyTo = Array.from({ length: replies }, (_, j) => intBelow(random, originals + j));
  const reactions = replyTo.map(() =>
    shuffled(
      Array.from({ length: emoji }, (_, e) =>
        distinctBelow(random, members, perEmoji, new Set()).map((m) => [m, e] as [number, number]),
      ).flat(),
      random,
    ),
  );
  return { originals, replyTo, reactions };
}

/** What a history page's check reads of a message. */
export interface PagedMessage {
  seq: number;
  replyTo?: { seq: number } | undefined;
  reactions?: { emoji: string; count: number }[] | undefined;
}

/** What the messages of a page must carry: replies to earlier messages or none; `emoji` emoji (0: none) of `perEmoji` each. */
export interface PageShape {
  length: number;
  replies: boolean;
  emoji: number;
  perEmoji: number;
}

/** What is wrong with a history page of one of the reactions benchmark's chats, as sentences. */
export function pageProblems(page: PagedMessage[], expect: PageShape): string[] {
  const problems: string[] = [];
  if (page.length !== expect.length) problems.push(`${page.length} messages, not ${expect.length}`);
  for (const m of page) {
    const reactions = m.reactions ?? [];
    if (expect.replies && (!m.replyTo || m.replyTo.seq >= m.seq)) {
      problems.push(`message ${m.seq} is not a reply to an earlier message`);
      break;
    }
    if (!expect.replies && m.replyTo) {
      problems.push(`message ${m.seq} is a reply`);
      break;
    }
    if (reactions.length !== expect.emoji || reactions.some((r) => r.count !== expect.perEmoji)) {
      problems.push(
        `message ${m.seq} has ${reactions.length} emoji (counts ${reactions.map((r) => r.count).join(",") || "none"}), not ${expect.emoji} x ${expect.perEmoji}`,
      );
      break;
    }
  }
  return problems;
}
