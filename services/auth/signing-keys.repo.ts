import type { JWK } from "jose";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** Signing keys live in the store so every auth instance signs with, and publishes, the same set. */
export interface SigningKeyRecord {
  _id: string;
  alg: "EdDSA";
  publicJwk: JWK;
  privateJwk: JWK;
  createdAt: Date;
  updatedAt: Date;
}

export class SigningKeysRepository extends BaseRepository<SigningKeyRecord> {
  indexes(): IndexSpec[] {
    return [{ name: "created", fields: { createdAt: -1 } }];
  }

  insert(record: Omit<SigningKeyRecord, "createdAt" | "updatedAt">): Promise<SigningKeyRecord> {
    return this.collection.insertOne(this.stampNew(record) as SigningKeyRecord);
  }

  newestFirst(limit: number): Promise<SigningKeyRecord[]> {
    return this.collection.find({}, { sort: { createdAt: -1 }, limit });
  }
}
