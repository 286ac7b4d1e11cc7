import { ConflictError, DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** An account is `pending` while registration runs, `active` once its profile exists too. */
export interface Account {
  _id: string;
  email: string;
  username: string;
  usernameLower: string;
  passwordHash: string;
  state: "pending" | "active";
  createdAt: Date;
  updatedAt: Date;
}

export class AccountsRepository extends BaseRepository<Account> {
  indexes(): IndexSpec[] {
    return [
      { name: "email_unique", fields: { email: 1 }, unique: true },
      { name: "username_unique", fields: { usernameLower: 1 }, unique: true },
      { name: "state_created", fields: { state: 1, createdAt: 1 } },
    ];
  }

  /** Reserves the email and username; throws a 409 naming the field already taken. */
  async insertPending(account: Omit<Account, "state" | "createdAt" | "updatedAt">): Promise<Account> {
    try {
      return await this.collection.insertOne(this.stampNew({ ...account, state: "pending" }) as Account);
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      if (await this.collection.findOne({ email: account.email })) {
        throw new ConflictError("This email is already registered", "EMAIL_TAKEN", "email");
      }
      throw new ConflictError("This username is taken", "USERNAME_TAKEN", "username");
    }
  }

  /**
   * Only the registration that inserted a pending account writes it (the stale-pending sweep
   * deletes it much later, and a delete cannot be undone by this write), so no lock is needed, and
   * the filter is the `_id` alone: a deleted account matches nothing, and FerretDB answers an
   * `_id`-only filter from its key but scans the whole collection for any other (a registration
   * got slower with every account stored).
   */
  activate(id: string): Promise<number> {
    return this.collection.updateOne({ _id: id }, this.stampUpdate({ $set: { state: "active" } }), {
      singleWriter: true,
    });
  }

  remove(id: string): Promise<number> {
    return this.collection.deleteOne({ _id: id });
  }

  findActiveByEmail(email: string): Promise<Account | null> {
    return this.collection.findOne({ email, state: "active" });
  }

  findActiveByUsername(username: string): Promise<Account | null> {
    return this.collection.findOne({ usernameLower: username.toLowerCase(), state: "active" });
  }

  findActiveById(id: string): Promise<Account | null> {
    return this.collection.findOne({ _id: id, state: "active" });
  }

  setPasswordHash(id: string, passwordHash: string): Promise<number> {
    return this.collection.updateOne({ _id: id }, this.stampUpdate({ $set: { passwordHash } }));
  }

  /** Registrations that never finished (their node died mid-way). */
  findStalePending(olderThan: Date): Promise<Account[]> {
    return this.collection.find({ state: "pending", createdAt: { $lt: olderThan } }, { limit: 100 });
  }
}
