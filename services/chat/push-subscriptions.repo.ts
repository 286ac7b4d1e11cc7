/**
 * The browsers' push subscriptions: one per endpoint (`_id` is the endpoint's sha256), for the
 * user who registered it last; a user keeps at most MAX_PER_USER, the least recently registered
 * going first.
 */
import { createHash } from "node:crypto";
import type { CheckedSubscription } from "../../lib/push/endpoint-rules.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

export interface PushSubscriptionRecord {
  _id: string;
  userId: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  createdAt: Date;
  updatedAt: Date;
}

/** Subscriptions a user keeps (browsers and devices); each message is pushed to all of them. */
export const MAX_PER_USER = 20;
const INSERT_ATTEMPTS = 3;

export function subscriptionIdOf(endpoint: string): string {
  return createHash("sha256").update(endpoint).digest("hex");
}

export class PushSubscriptionsRepository extends BaseRepository<PushSubscriptionRecord> {
  indexes(): IndexSpec[] {
    return [{ name: "user", fields: { userId: 1 } }];
  }

  /**
   * Registers the subscription for the user (one registered by another user moves to this one,
   * with the keys given now); resolves whether the user did not hold it already.
   */
  async upsert(userId: string, sub: CheckedSubscription): Promise<{ created: boolean }> {
    const _id = subscriptionIdOf(sub.endpoint);
    for (let attempt = 1; ; attempt++) {
      const existing = await this.collection.findOne({ _id });
      if (existing) {
        await this.collection.updateOne(
          { _id },
          this.stampUpdate({ $set: { userId, p256dh: sub.p256dh, auth: sub.auth } }),
        );
        if (existing.userId !== userId) await this.trim(userId);
        return { created: existing.userId !== userId };
      }
      if (await this.insertIfNew({ _id, userId, ...sub })) {
        await this.trim(userId);
        return { created: true };
      }
      // Registered at the same moment by another request: update that one instead.
      if (attempt >= INSERT_ATTEMPTS) return { created: false };
    }
  }

  /** Removes the user's subscription with this endpoint; resolves whether there was one. */
  async remove(userId: string, endpoint: string): Promise<boolean> {
    return (await this.collection.deleteOne({ _id: subscriptionIdOf(endpoint), userId })) === 1;
  }

  /** Removes a subscription the push service no longer knows. */
  async removeGone(endpoint: string): Promise<void> {
    await this.collection.deleteOne({ _id: subscriptionIdOf(endpoint), endpoint });
  }

  /** Every subscription of the given users, in one query. */
  forUsers(userIds: string[]): Promise<PushSubscriptionRecord[]> {
    if (userIds.length === 0) return Promise.resolve([]);
    return this.collection.find({ userId: { $in: [...new Set(userIds)] } });
  }

  /** Removes all of a user's subscriptions (their account is deleted); resolves how many. */
  removeAllOf(userId: string): Promise<number> {
    return this.collection.deleteMany({ userId });
  }

  /** Drops the user's least recently registered subscriptions beyond MAX_PER_USER. */
  private async trim(userId: string): Promise<void> {
    const all = await this.collection.find({ userId }, { sort: { updatedAt: -1 } });
    for (const stale of all.slice(MAX_PER_USER)) {
      await this.collection.deleteOne({ _id: stale._id, userId });
    }
  }
}
