/**
 * The VAPID key pair (RFC 8292) pushes are signed with and browsers subscribe to: made on the
 * first start and kept in the store, one document inserted only when absent, so that every node
 * (and every restart) signs with the pair the browsers know. Nodes starting together race to
 * insert; the one refused by the duplicate `_id` reads the winner's pair.
 */
import webPush from "web-push";
import { BaseRepository } from "../store/base-repository.ts";
import { DuplicateKeyError } from "../store/store-errors.ts";
import type { IndexSpec, Store } from "../store/types.ts";

/** base64url: the public key an uncompressed P-256 point (65 bytes), the private key 32 bytes. */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export interface VapidKeyRecord extends VapidKeys {
  _id: string;
  createdAt: Date;
  updatedAt: Date;
}

const VAPID_ID = "vapid";

export class VapidKeysRepository extends BaseRepository<VapidKeyRecord> {
  indexes(): IndexSpec[] {
    return [];
  }

  /** The stored pair; the first call in the store's life makes it. */
  async ensure(): Promise<VapidKeys> {
    const found = await this.collection.findOne({ _id: VAPID_ID });
    if (found) return pairOf(found);
    const { publicKey, privateKey } = webPush.generateVAPIDKeys();
    try {
      await this.collection.insertOne(
        this.stampNew({ _id: VAPID_ID, publicKey, privateKey }) as VapidKeyRecord,
        { identifyIndex: false },
      );
      return { publicKey, privateKey };
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      const winner = await this.collection.findOne({ _id: VAPID_ID });
      if (!winner) throw err;
      return pairOf(winner);
    }
  }
}

/** Reads (or on the first start makes) the platform's VAPID key pair. */
export async function loadVapidKeys(store: Store): Promise<VapidKeys> {
  const repo = new VapidKeysRepository(store.collection<VapidKeyRecord>("vapid_keys"));
  await repo.init();
  return repo.ensure();
}

function pairOf(record: VapidKeyRecord): VapidKeys {
  return { publicKey: record.publicKey, privateKey: record.privateKey };
}
