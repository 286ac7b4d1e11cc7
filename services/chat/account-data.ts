/**
 * The chat service's part of erasing an account and of exporting one's data, free of Moleculer.
 * Erasure works in bounded batches found by what still needs doing (a message that still holds
 * files, one not yet tombstoned, an upload still there), so it never holds a whole history in
 * memory, and a run cut off half-way is finished by running it again.
 */
import { createHash } from "node:crypto";
import type { ChatView, UserDataPage } from "../../lib/contracts.ts";
import { ValidationFailedError } from "../../lib/errors.ts";
import type { BlocksRepository } from "./blocks.repo.ts";
import type { ChatsRepository } from "./chats.repo.ts";
import type { Message, MessagesRepository } from "./messages.repo.ts";
import type { ReceiptsRepository } from "./receipts.repo.ts";
import type { UploadsRepository } from "./uploads.repo.ts";
import { type Uploads, uploadView } from "./uploads.ts";
import { toLast, toMessageViews } from "./views.ts";

/** Messages changed by one bulk update. */
const ERASE_BATCH = 500;
/** Blocks deleted (and announced) at once. */
const BLOCK_BATCH = 500;
/** An export page's messages and uploads when the caller names no limit. */
export const EXPORT_PAGE_DEFAULT = 500;
/** Chats read per page of the chat list while the export's first page gathers them all. */
const CHAT_LIST_PAGE = 200;

export interface AccountDataDeps {
  chats: ChatsRepository;
  messages: MessagesRepository;
  blocks: BlocksRepository;
  receipts: ReceiptsRepository;
  uploadRecords: UploadsRepository;
  /** The uploads logic: an erased user's uploads are purged the way a sweep purges one. */
  uploads: Uploads;
  /** A page of the user's chats as `chat.list` gives them. */
  listChats(
    userId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<{ chats: ChatView[]; nextCursor: string | null }>;
  /** Tells every chat node that blocks of these users changed (chat.blocks.changed). */
  blocksChanged(userIds: string[]): void;
  /**
   * Writes the chat summaries this node holds back (last-message-writer.ts), so none written
   * after the erasure brings an erased text back into the chat list.
   */
  flushSummaries(): Promise<void>;
  /** The user's web push subscriptions, when the service keeps any. */
  pushSubscriptions?: { removeAllOf(userId: string): Promise<unknown> } | undefined;
}

/** Where an export stream stands: after the item made at `at` (ms), `skip` of those made then given. */
type Position = { at: number; skip: number } | "start" | "done";

interface ExportCursor {
  messages: Position;
  uploads: Position;
}

export class AccountData {
  private readonly d: AccountDataDeps;

  constructor(deps: AccountDataDeps) {
    this.d = deps;
  }

  /**
   * Erases what the chat service keeps of a user: their uploads (bytes, thumbnails, records and
   * quota), the files their messages held, with `eraseMessages` the text of those messages too
   * (each one shown deleted, as a message its sender deleted), their mutes, the blocks they made
   * and those made of them, and their push subscriptions. Safe to repeat.
   */
  async eraseUser(userId: string, eraseMessages: boolean): Promise<void> {
    const now = new Date();
    if (eraseMessages) {
      while ((await this.d.messages.tombstoneSomeOf(userId, ERASE_BATCH, now)) > 0) {}
    }
    // First out of the messages (no reader is offered them), then gone from the store.
    while ((await this.d.messages.emptyAttachmentsOf(userId, ERASE_BATCH)) > 0) {}
    await this.d.uploads.eraseOwner(userId);
    if (eraseMessages) await this.d.flushSummaries();
    const chats = await this.d.chats.listForMembers([userId]);
    if (eraseMessages) await this.tombstoneSummaries(userId, chats);
    await this.unmuteAll(
      userId,
      chats.map((c) => c._id),
    );
    await this.removeBlocks(userId);
    await this.d.pushSubscriptions?.removeAllOf(userId);
  }

  /** Chats whose latest message is one of the user's show it deleted in the chat list too. */
  private async tombstoneSummaries(
    userId: string,
    chats: { _id: string; lastMessage?: { id: string; senderId: string } | null }[],
  ) {
    const theirs = chats.filter((c) => c.lastMessage?.senderId === userId);
    if (theirs.length === 0) return;
    const ids = theirs.map((c) => c.lastMessage?.id as string);
    const found = await this.d.messages.byIds(ids);
    await Promise.all(
      theirs.map((c, i) => {
        const m = found[i];
        return m?.deleted ? this.d.chats.updateLastMessage(c._id, toLast(m)) : undefined;
      }),
    );
  }

  private async unmuteAll(userId: string, chatIds: string[]): Promise<void> {
    if (chatIds.length === 0) return;
    const receipts = await this.d.receipts.forUser(userId, chatIds);
    const muted = [...receipts.values()].filter((r) => r.muted);
    await Promise.all(muted.map((r) => this.d.receipts.setMute(r.chatId, userId, false, null)));
  }

  /** Deletes the user's blocks both ways, a batch at a time; each batch is announced once deleted. */
  private async removeBlocks(userId: string): Promise<void> {
    for (;;) {
      const batch = await this.d.blocks.involving(userId, BLOCK_BATCH);
      if (batch.length === 0) return;
      await this.d.blocks.removeIds(batch.map((b) => b._id));
      const others = new Set(batch.map((b) => (b.blockerId === userId ? b.blockedId : b.blockerId)));
      this.d.blocksChanged([userId, ...others]);
    }
  }

  /**
   * One page of the user's own data, oldest first: on the first page (no `after`) all their
   * chats, on every page up to `limit` of the messages they sent (across every chat) and of their
   * uploads; `next` asks for the page after, null at the end.
   */
  async exportUser(
    userId: string,
    after: string | undefined,
    limit = EXPORT_PAGE_DEFAULT,
  ): Promise<UserDataPage> {
    const from: ExportCursor =
      after === undefined ? { messages: "start", uploads: "start" } : decodeExportCursor(userId, after);
    const [chats, messages, uploads] = await Promise.all([
      after === undefined ? this.allChats(userId) : Promise.resolve([]),
      this.stream(from.messages, limit, (at, skip, n) => this.d.messages.bySender(userId, at, skip, n)),
      this.stream(from.uploads, limit, (at, skip, n) =>
        this.d.uploadRecords.readyOfOwner(userId, at, skip, n),
      ),
    ]);
    const next: ExportCursor = { messages: messages.next, uploads: uploads.next };
    return {
      chats,
      messages: await toMessageViews(messages.items as Message[], (ids) => this.d.messages.byIds(ids)),
      uploads: uploads.items.map(uploadView),
      next: next.messages === "done" && next.uploads === "done" ? null : encodeExportCursor(userId, next),
    };
  }

  private async allChats(userId: string): Promise<ChatView[]> {
    const all: ChatView[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.d.listChats(userId, cursor, CHAT_LIST_PAGE);
      all.push(...page.chats);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    // Oldest first, as the rest of the export.
    return all.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** The next `limit` items of one stream from `pos`, and where the one after begins. */
  private async stream<T extends { createdAt: Date }>(
    pos: Position,
    limit: number,
    read: (at: Date | undefined, skip: number, limit: number) => Promise<T[]>,
  ): Promise<{ items: T[]; next: Position }> {
    if (pos === "done") return { items: [], next: "done" };
    const start = pos === "start" ? undefined : pos;
    const found = await read(start ? new Date(start.at) : undefined, start?.skip ?? 0, limit + 1);
    const items = found.slice(0, limit);
    const last = items.at(-1);
    if (found.length <= limit || !last) return { items, next: "done" };
    const at = last.createdAt.getTime();
    let skip = items.filter((i) => i.createdAt.getTime() === at).length;
    if (start && start.at === at) skip += start.skip;
    return { items, next: { at, skip } };
  }
}

const VERSION = 1;

function encodePosition(p: Position): unknown {
  return typeof p === "string" ? p : [p.at, p.skip];
}

function decodePosition(value: unknown): Position | undefined {
  if (value === "start" || value === "done") return value;
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    Number.isSafeInteger(value[0]) &&
    Number.isSafeInteger(value[1]) &&
    (value[0] as number) >= 0 &&
    (value[1] as number) >= 0
  ) {
    return { at: value[0] as number, skip: value[1] as number };
  }
  return undefined;
}

/**
 * An opaque cursor: where each stream stands, and a checksum that ties it to the user's export,
 * so one altered or made up is refused instead of answering some other page. It confers nothing:
 * every page is read among the user's own data.
 */
export function encodeExportCursor(userId: string, cursor: ExportCursor): string {
  const body = Buffer.from(
    JSON.stringify([VERSION, encodePosition(cursor.messages), encodePosition(cursor.uploads)]),
    "utf8",
  ).toString("base64url");
  return `${body}.${checksum(userId, body)}`;
}

/** The cursor, or a 422 naming `after`. */
export function decodeExportCursor(userId: string, text: string): ExportCursor {
  const [body, sum, extra] = text.split(".");
  if (!body || sum === undefined || extra !== undefined || checksum(userId, body) !== sum) throw badCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    throw badCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== VERSION) throw badCursor();
  const messages = decodePosition(parsed[1]);
  const uploads = decodePosition(parsed[2]);
  if (!messages || !uploads) throw badCursor();
  return { messages, uploads };
}

function checksum(userId: string, body: string): string {
  return createHash("sha256").update(`export\u0000${userId}\u0000${body}`).digest("base64url").slice(0, 16);
}

function badCursor(): ValidationFailedError {
  return new ValidationFailedError([
    { field: "after", type: "cursor", message: "Invalid cursor: use the next of a previous page" },
  ]);
}
