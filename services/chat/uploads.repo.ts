import type { AttachmentView } from "../../lib/contracts.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/**
 * An uploaded file's record; its bytes are in the blob store under `key` (and its thumbnails under
 * `key.thumbN`). `pending` while the bytes stream in, `ready` once stored, `deleting` while its
 * bytes are removed. `refs` are the live messages that hold it.
 */
export interface Upload {
  _id: string;
  ownerId: string;
  key: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  width?: number;
  height?: number;
  state: "pending" | "ready" | "deleting";
  refs: string[];
  /** It has been in a message: once none holds it, it goes. */
  attached: boolean;
  /** When a send last took it, so a sweep leaves it alone while that send stores its message. */
  claimedAt?: Date;
  /** Since when nothing holds it (its upload began, or it was never attached): what sweeps look at. */
  orphanAt?: Date;
  /** Moves on every change: the compare-and-set of the read-modify-writes below. */
  rev: number;
  createdAt: Date;
  updatedAt: Date;
}

/** What of a file a message keeps: what it shows, as it was when the message was sent. */
export type StoredAttachment = AttachmentView;

export function attachmentOf(u: Upload): StoredAttachment {
  const a: StoredAttachment = { id: u._id, name: u.name, size: u.size, contentType: u.contentType };
  if (u.width !== undefined) a.width = u.width;
  if (u.height !== undefined) a.height = u.height;
  return a;
}

export class UploadsRepository extends BaseRepository<Upload> {
  indexes(): IndexSpec[] {
    return [
      { name: "orphan_at", fields: { orphanAt: 1 }, sparse: true },
      // A user's uploads, oldest first: their export and their erasure.
      { name: "owner_time", fields: { ownerId: 1, createdAt: 1 } },
    ];
  }

  /** Up to `limit` of the owner's uploads, in any state. */
  ofOwner(ownerId: string, limit: number): Promise<Upload[]> {
    return this.collection.find({ ownerId }, { limit });
  }

  /**
   * Up to `limit` of the owner's ready uploads, oldest first: those made at or after `from` (all
   * when absent), the first `skip` of them left out.
   */
  readyOfOwner(ownerId: string, from: Date | undefined, skip: number, limit: number): Promise<Upload[]> {
    return this.collection.find(
      from === undefined
        ? { ownerId, state: "ready" }
        : { ownerId, state: "ready", createdAt: { $gte: from } },
      { sort: { createdAt: 1, _id: 1 }, skip, limit },
    );
  }

  async begin(id: string, ownerId: string, key: string, name: string, contentType: string): Promise<void> {
    const now = new Date();
    await this.collection.insertOne(
      this.stampNew(
        {
          _id: id,
          ownerId,
          key,
          name,
          contentType,
          size: 0,
          sha256: "",
          state: "pending",
          refs: [],
          attached: false,
          orphanAt: now,
          rev: 0,
        },
        now,
      ) as Upload,
    );
  }

  /** The pending upload's bytes are stored: resolves it ready, or null when it is no longer pending. */
  commit(
    id: string,
    ownerId: string,
    fields: Pick<Upload, "size" | "sha256" | "width" | "height">,
  ): Promise<Upload | null> {
    const $set: Record<string, unknown> = {
      size: fields.size,
      sha256: fields.sha256,
      state: "ready",
      orphanAt: new Date(),
    };
    if (fields.width !== undefined) $set.width = fields.width;
    if (fields.height !== undefined) $set.height = fields.height;
    return this.collection.findOneAndUpdate(
      { _id: id, ownerId, state: "pending" },
      this.stampUpdate({ $set, $inc: { rev: 1 } }),
    );
  }

  get(id: string): Promise<Upload | null> {
    return this.collection.findOne({ _id: id });
  }

  byIds(ids: string[]): Promise<(Upload | null)[]> {
    return this.collection.findByIds(ids);
  }

  /** Marks the owner's ready upload as taken by a send; resolves false when it is not that. */
  async claim(id: string, ownerId: string, now: Date): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: id, ownerId, state: "ready" },
      this.stampUpdate({ $set: { claimedAt: now }, $inc: { rev: 1 } }, now),
    );
    return n === 1;
  }

  /** Writes `changes` if the upload is still at `rev`; resolves whether it was. */
  async replace(u: Upload, changes: { $set?: Record<string, unknown>; $unset?: Record<string, true> }) {
    const n = await this.collection.updateOne(
      { _id: u._id, rev: u.rev },
      this.stampUpdate({ ...changes, $inc: { rev: 1 } }),
    );
    return n === 1;
  }

  /** Uploads nothing has held since before `before`, in this state: what a sweep looks at. */
  orphans(state: Upload["state"], before: Date, limit: number): Promise<Upload[]> {
    return this.collection.find({ orphanAt: { $lt: before }, state }, { limit });
  }

  /** Deletes the upload if it is still pending at `rev`; resolves whether it did. */
  async removePending(id: string, rev: number): Promise<boolean> {
    return (await this.collection.deleteOne({ _id: id, state: "pending", rev })) === 1;
  }

  async remove(id: string): Promise<void> {
    await this.collection.deleteOne({ _id: id });
  }
}

/** Each user's stored upload bytes: `_id` is the user id. */
export interface UploadUsage {
  _id: string;
  bytes: number;
  createdAt: Date;
  updatedAt: Date;
}

export class UploadUsageRepository extends BaseRepository<UploadUsage> {
  indexes(): IndexSpec[] {
    return [];
  }

  async used(userId: string): Promise<number> {
    return (await this.collection.findOne({ _id: userId }))?.bytes ?? 0;
  }

  /** Adds `bytes` to the user's usage unless that passes `quota`; resolves whether it did. */
  async reserve(userId: string, bytes: number, quota: number): Promise<boolean> {
    await this.insertIfNew({ _id: userId, bytes: 0 });
    const n = await this.collection.updateOne(
      { _id: userId, bytes: { $lte: quota - bytes } },
      this.stampUpdate({ $inc: { bytes } }),
    );
    return n === 1;
  }

  /** The user's usage record goes (their account was erased). */
  async remove(userId: string): Promise<void> {
    await this.collection.deleteOne({ _id: userId });
  }

  async release(userId: string, bytes: number): Promise<void> {
    if (bytes > 0)
      await this.collection.updateOne({ _id: userId }, this.stampUpdate({ $inc: { bytes: -bytes } }));
  }
}
