/**
 * Uploaded files and the messages that hold them. The gateway streams an upload's bytes to the
 * blob store between `begin` (a pending record) and `commit` (its size counted against the owner's
 * quota, atomically); a send claims the owner's ready uploads and, once its message is stored,
 * adds the message to each one's refs; a deleted message leaves them, and a file no live message
 * holds any more is removed, bytes first. Each record changes by compare-and-set on `rev`, so two
 * chat nodes, a send and a sweep can meet on one without losing a ref or freeing a file in use.
 */
import { randomBytes } from "node:crypto";
import type { UploadView } from "../../lib/contracts.ts";
import {
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  ValidationFailedError,
} from "../../lib/errors.ts";
import { type BlobStore, BlobStoreUnavailableError } from "../../lib/files/blob-store.ts";
import {
  attachmentOf,
  type StoredAttachment,
  type Upload,
  type UploadsRepository,
  type UploadUsageRepository,
} from "./uploads.repo.ts";

/** The thumbnail widths `GET /files/:id?thumb=` makes; each is kept under `key.thumbN`. */
export const THUMB_SIZES = [160, 320, 640] as const;
/** Files one message holds at most. */
export const MAX_ATTACHMENTS = 10;
/** How long a send's claim keeps a sweep away while the send stores its message. */
const CLAIM_HOLD_MS = 10 * 60_000;
/** A pending upload older than this was abandoned (its gateway died while the bytes streamed). */
const PENDING_TTL_MS = 60 * 60_000;
/** A purge that started this long ago and has not finished is taken up again. */
const DELETING_RETRY_MS = 5 * 60_000;
const SWEEP_BATCH = 200;
const CAS_ATTEMPTS = 20;

export interface UploadsDeps {
  uploads: UploadsRepository;
  usage: UploadUsageRepository;
  blobs: BlobStore;
  quotaBytes: number;
  orphanTtlMs: number;
  /** Whether the user is a member of the chat now. */
  isMember(userId: string, chatId: string): Promise<boolean>;
  warn(message: string, err: unknown): void;
}

export function uploadView(u: Upload): UploadView {
  return { ...attachmentOf(u), sha256: u.sha256, createdAt: u.createdAt.toISOString() };
}

function quotaError(quotaBytes: number, usedBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `Your uploads would pass your quota of ${quotaBytes} bytes`,
    "UPLOAD_QUOTA_EXCEEDED",
    { quotaBytes, usedBytes },
  );
}

function chatOf(messageId: string): string {
  return messageId.slice(0, messageId.lastIndexOf("_"));
}

export class Uploads {
  private readonly d: UploadsDeps;

  constructor(deps: UploadsDeps) {
    this.d = deps;
  }

  /**
   * A pending upload the gateway now streams to `key`; resolves how many bytes the owner's quota
   * has left (the gateway stops reading past it). `declaredSize` (Content-Length) is refused at
   * once when it would not fit.
   */
  async begin(ownerId: string, name: string, contentType: string, declaredSize?: number) {
    const used = await this.d.usage.used(ownerId);
    const remainingBytes = Math.max(0, this.d.quotaBytes - used);
    if (declaredSize !== undefined && declaredSize > remainingBytes)
      throw quotaError(this.d.quotaBytes, used);
    const id = randomBytes(16).toString("base64url");
    await this.d.uploads.begin(id, ownerId, id, name, contentType);
    return { id, key: id, remainingBytes };
  }

  /** The bytes are stored: counts them against the quota (atomically) and makes the upload ready. */
  async commit(
    ownerId: string,
    id: string,
    fields: { size: number; sha256: string; width?: number; height?: number },
  ): Promise<UploadView> {
    const pending = await this.d.uploads.get(id);
    if (!pending || pending.ownerId !== ownerId || pending.state !== "pending")
      throw new NotFoundError("Upload", "UPLOAD_NOT_FOUND");
    if (!(await this.d.usage.reserve(ownerId, fields.size, this.d.quotaBytes))) {
      const used = await this.d.usage.used(ownerId);
      await this.abort(ownerId, id);
      throw quotaError(this.d.quotaBytes, used);
    }
    const ready = await this.d.uploads.commit(id, ownerId, fields);
    if (!ready) {
      await this.d.usage.release(ownerId, fields.size);
      throw new NotFoundError("Upload", "UPLOAD_NOT_FOUND");
    }
    return uploadView(ready);
  }

  /**
   * The upload failed: its record goes. A failed put leaves nothing at the key (BlobStore.put), so
   * the bytes are only deleted in case, and a store that is down (the likely cause) does not keep
   * the record; nothing of a pending upload counts in the quota.
   */
  async abort(ownerId: string, id: string): Promise<void> {
    const u = await this.d.uploads.get(id);
    if (!u || u.ownerId !== ownerId || u.state !== "pending") return;
    if (await this.d.uploads.removePending(id, u.rev)) {
      await this.d.blobs.delete(u.key).catch(() => undefined);
    }
  }

  /**
   * The upload as the caller may read it: its owner while it is theirs to use, and the members of
   * a chat with a live message that holds it. Anyone else, and a file on its way out, get 404.
   */
  async access(userId: string, id: string): Promise<Upload> {
    const u = await this.d.uploads.get(id);
    const gone = new NotFoundError("File", "FILE_NOT_FOUND");
    if (u?.state !== "ready") throw gone;
    if (u.attached && u.refs.length === 0) throw gone;
    if (u.ownerId === userId) return u;
    for (const chatId of new Set(u.refs.map(chatOf))) {
      if (await this.d.isMember(userId, chatId)) return u;
    }
    throw gone;
  }

  /**
   * Takes the owner's ready uploads for a message, in the order given; any that is not one (an
   * unknown id, another user's, one being removed) refuses them all with 422 `attachmentIds`.
   */
  async claim(ownerId: string, ids: string[]): Promise<StoredAttachment[]> {
    if (new Set(ids).size !== ids.length) throw invalidIds("'attachmentIds' must not repeat an id");
    const now = new Date();
    const claimed = await Promise.all(ids.map((id) => this.d.uploads.claim(id, ownerId, now)));
    if (claimed.some((ok) => !ok)) {
      throw invalidIds("'attachmentIds' must name your own uploads that are ready");
    }
    const found = await this.d.uploads.byIds(ids);
    return found.map((u) => {
      if (!u) throw invalidIds("'attachmentIds' must name your own uploads that are ready");
      return attachmentOf(u);
    });
  }

  /** The stored message holds these uploads now. */
  async attach(ids: string[], messageId: string): Promise<void> {
    await Promise.all(
      ids.map((id) =>
        this.change(id, (u) =>
          u.state !== "ready" || (u.refs.includes(messageId) && u.attached)
            ? null
            : {
                $set: { refs: [...new Set([...u.refs, messageId])], attached: true },
                $unset: { orphanAt: true, claimedAt: true },
              },
        ),
      ),
    );
  }

  /** The message no longer holds these uploads (it was deleted); one nothing holds is removed. */
  async detach(ids: string[], messageId: string): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const last = await this.change(id, (u) =>
          u.refs.includes(messageId) ? { $set: { refs: u.refs.filter((r) => r !== messageId) } } : null,
        );
        // The message is gone either way: bytes the store could not drop now, a sweep drops later.
        if (last && last.refs.length === 0 && last.attached) {
          await this.purge(last).catch((err) =>
            this.d.warn(`Removing upload ${id} failed; a sweep removes it later`, err),
          );
        }
      }),
    );
  }

  /**
   * Removes what nothing holds: uploads never attached within the orphan TTL, pending ones whose
   * gateway gave up long ago, and purges that a node began but did not finish.
   */
  async sweep(now = Date.now()): Promise<number> {
    let removed = 0;
    const groups: [Upload["state"], number][] = [
      ["ready", now - this.d.orphanTtlMs],
      ["pending", now - PENDING_TTL_MS],
      ["deleting", now - DELETING_RETRY_MS],
    ];
    for (const [state, before] of groups) {
      for (const u of await this.d.uploads.orphans(state, new Date(before), SWEEP_BATCH)) {
        if (state === "ready" && (u.refs.length > 0 || u.attached)) continue;
        if (u.claimedAt && u.claimedAt.getTime() > now - CLAIM_HOLD_MS) continue;
        try {
          if (await this.purge(u)) removed += 1;
        } catch (err) {
          this.d.warn(`Removing upload ${u._id} failed; the next sweep tries again`, err);
        }
      }
    }
    return removed;
  }

  /**
   * Removes every upload of the owner, in any state (bytes, thumbnails, record), then their usage
   * record: what erasing an account does. Each purge is the one a sweep does, so a run cut off
   * half-way is finished by running it again (or by the sweep, for uploads left deleting).
   */
  async eraseOwner(ownerId: string): Promise<number> {
    let removed = 0;
    let fruitless = 0;
    for (;;) {
      const batch = await this.d.uploads.ofOwner(ownerId, SWEEP_BATCH);
      if (batch.length === 0) break;
      let round = 0;
      for (const u of batch) if (await this.purge(u)) round += 1;
      removed += round;
      // A purge refused because the record changed meanwhile is read again; one that keeps
      // changing gives up rather than loop.
      fruitless = round === 0 ? fruitless + 1 : 0;
      if (fruitless >= CAS_ATTEMPTS)
        throw new ServiceUnavailableError("The uploads are changing too often; try again");
    }
    await this.d.usage.remove(ownerId);
    return removed;
  }

  /**
   * Removes one upload, if it is still as read: marked deleting (so nothing serves or attaches it),
   * then its bytes and thumbnails, then its record, then its bytes leave the owner's usage.
   */
  private async purge(u: Upload): Promise<boolean> {
    let doomed = u;
    if (u.state !== "deleting") {
      if (!(await this.d.uploads.replace(u, { $set: { state: "deleting", orphanAt: new Date() } })))
        return false;
      doomed = { ...u, state: "deleting", rev: u.rev + 1 };
    }
    try {
      await Promise.all([
        this.d.blobs.delete(doomed.key),
        ...THUMB_SIZES.map((n) => this.d.blobs.delete(`${doomed.key}.thumb${n}`)),
      ]);
    } catch (err) {
      // Left deleting: the sweep takes it up again once the store is back.
      throw err instanceof BlobStoreUnavailableError ? new ServiceUnavailableError(err.message) : err;
    }
    await this.d.uploads.remove(doomed._id);
    // Committed uploads (the only ones with a digest) count in their owner's usage.
    if (u.sha256 !== "") await this.d.usage.release(u.ownerId, u.size);
    return true;
  }

  /** Read-modify-write of one upload by compare-and-set; resolves it as written (null: unchanged). */
  private async change(
    id: string,
    next: (u: Upload) => { $set?: Record<string, unknown>; $unset?: Record<string, true> } | null,
  ): Promise<Upload | null> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const u = await this.d.uploads.get(id);
      if (!u) return null;
      const changes = next(u);
      if (!changes) return null;
      if (await this.d.uploads.replace(u, changes)) {
        const written = { ...u, ...(changes.$set as Partial<Upload>), rev: u.rev + 1 };
        for (const key of Object.keys(changes.$unset ?? {})) delete (written as Record<string, unknown>)[key];
        return written;
      }
    }
    throw new ServiceUnavailableError("The upload is changing too often; try again");
  }
}

function invalidIds(message: string): ValidationFailedError {
  return new ValidationFailedError([{ field: "attachmentIds", type: "attachmentIds", message }]);
}
