/**
 * What a reconnecting client missed (the WebSocket `resume` frame), for all the chats it lists in
 * one call: only the caller's chats are looked at (one query for all of them), each replays at most
 * its `limit` messages, and beyond that the answer names the seq range the client pages from the
 * history. One answer carries at most `maxMessages` messages, no more than a page of the history;
 * what did not fit comes back in `next`, for the caller to ask again.
 */
import type { ResumeAnswer, ResumeEntry } from "../../lib/contracts.ts";
import type { Chat, ChatsRepository } from "./chats.repo.ts";
import type { MessagesRepository } from "./messages.repo.ts";
import { toMessageViews } from "./views.ts";

/** Messages in one answer at most: the largest page of the history. */
export const RESUME_ANSWER_MESSAGES = 200;
/** Chats probed or read at once. */
const CONCURRENCY = 16;

export interface ResumeDeps {
  chats: ChatsRepository;
  messages: MessagesRepository;
  /** The highest seq known to be taken in a chat (its summary, or what this node stored since). */
  knownSeq(chat: Chat): number;
}

interface Read {
  chatId: string;
  after: number;
  count: number;
}

export class ResumeReader {
  private readonly d: ResumeDeps;

  constructor(deps: ResumeDeps) {
    this.d = deps;
  }

  async read(
    userId: string,
    entries: ResumeEntry[],
    maxMessages = RESUME_ANSWER_MESSAGES,
  ): Promise<ResumeAnswer> {
    const wanted = [...new Map(entries.map((e) => [e.id, e])).values()];
    const found = await this.d.chats.memberChatsAmong(
      userId,
      wanted.map((e) => e.id),
    );
    const chats = new Map(found.map((c) => [c._id, c]));
    const forbidden = wanted.filter((e) => !chats.has(e.id)).map((e) => e.id);
    const mine = wanted.filter((e) => chats.has(e.id));
    // The summary may lag the messages in a cluster (last-message-writer.ts): the newest seq is
    // found from it by `_id` probes, one lookup when it is current.
    const tops = await mapLimited(mine, (e) =>
      this.d.messages.maxSeq(e.id, this.d.knownSeq(chats.get(e.id) as Chat)),
    );
    const reads: Read[] = [];
    const answer: ResumeAnswer = { messages: [], truncated: [], forbidden, next: [] };
    let budget = maxMessages;
    mine.forEach((e, i) => {
      const top = tops[i] as number;
      const end = Math.min(top, e.after + e.limit);
      const count = Math.max(0, end - e.after);
      if (count === 0) return;
      const take = Math.min(count, budget);
      budget -= take;
      if (take > 0) reads.push({ chatId: e.id, after: e.after, count: take });
      if (take < count) answer.next.push({ id: e.id, after: e.after + take, limit: e.limit - take });
      else if (top > end) answer.truncated.push({ chatId: e.id, fromSeq: end + 1, toSeq: top });
    });
    const pages = await mapLimited(reads, (r) =>
      this.d.messages.page(r.chatId, { after: r.after, limit: r.count, seqHint: r.after + r.count }),
    );
    answer.messages = await toMessageViews(pages.flat(), (ids) => this.d.messages.byIds(ids));
    return answer;
  }
}

/** fn over every item, at most CONCURRENCY at a time; the results in the items' order. */
async function mapLimited<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return results;
}
