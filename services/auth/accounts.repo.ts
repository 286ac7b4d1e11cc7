import { ConflictError, DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec, Update } from "../../lib/store/types.ts";

/**
 * An account is `pending` while registration runs, `active` once its profile exists too,
 * `deleting` while a deletion erases it across services, and `deleted` for good: the document stays
 * (its id is never given again) with the address replaced and no password, and its username stays
 * taken until `usernameReleaseAt`.
 */
export interface Account {
  _id: string;
  email: string;
  /** Missing on accounts made before verification existed: not verified. */
  emailVerified?: boolean;
  username: string;
  usernameLower: string;
  passwordHash: string;
  state: "pending" | "active" | "deleting" | "deleted";
  /** Two-factor authentication, when on. */
  mfa?: MfaState;
  /** A secret made by setup and not confirmed by a code yet. */
  mfaPending?: { secret: string; createdAt: Date };
  /** Bumped by every change of `mfa`, which is a compare-and-set on it. */
  mfaRev?: number;
  /** deleting: whether the user asked for their messages' text to go too. */
  eraseMessages?: boolean;
  deletedAt?: Date;
  usernameReleaseAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface MfaState {
  secret: string;
  /** The last TOTP time step accepted: a code of it or before is refused (no replay). */
  lastStep: number;
  /** SHA-256 of the unused recovery codes. */
  recovery: string[];
  enabledAt: Date;
}

export class AccountsRepository extends BaseRepository<Account> {
  indexes(): IndexSpec[] {
    return [
      { name: "email_unique", fields: { email: 1 }, unique: true },
      { name: "username_unique", fields: { usernameLower: 1 }, unique: true },
      { name: "state_created", fields: { state: 1, createdAt: 1 } },
      { name: "username_release", fields: { usernameReleaseAt: 1 }, sparse: true },
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

  findById(id: string): Promise<Account | null> {
    return this.collection.findOne({ _id: id });
  }

  /** The address any account (of any state) has, to tell a change it is taken. */
  findByEmail(email: string): Promise<Account | null> {
    return this.collection.findOne({ email });
  }

  /** Marks the address verified, if it is still the account's. */
  setEmailVerified(id: string, email: string): Promise<number> {
    return this.collection.updateOne(
      { _id: id, email, state: "active" },
      this.stampUpdate({ $set: { emailVerified: true } }),
    );
  }

  /** Moves the account to a new, verified address; a 409 when another account took it meanwhile. */
  async changeEmail(id: string, email: string): Promise<number> {
    try {
      return await this.collection.updateOne(
        { _id: id, state: "active" },
        this.stampUpdate({ $set: { email, emailVerified: true } }),
      );
    } catch (err) {
      if (err instanceof DuplicateKeyError)
        throw new ConflictError("This email is already registered", "EMAIL_TAKEN", "email");
      throw err;
    }
  }

  setMfaPending(id: string, secret: string): Promise<number> {
    return this.collection.updateOne(
      { _id: id, state: "active" },
      this.stampUpdate({ $set: { mfaPending: { secret, createdAt: new Date() } } }),
    );
  }

  /**
   * Compare-and-set of the two-factor state against the revision read: sets `mfa` (or removes it
   * when undefined) and drops any pending setup; resolves whether this write won.
   */
  async writeMfa(account: Account, mfa: MfaState | undefined): Promise<boolean> {
    const update: Update = mfa
      ? { $set: { mfa }, $unset: { mfaPending: true }, $inc: { mfaRev: 1 } }
      : { $unset: { mfa: true, mfaPending: true }, $inc: { mfaRev: 1 } };
    const n = await this.collection.updateOne(
      { _id: account._id, state: "active", mfaRev: account.mfaRev ?? { $exists: false } },
      this.stampUpdate(update),
    );
    return n === 1;
  }

  /** Starts a deletion: resolves whether this call moved the account from active to deleting. */
  async markDeleting(id: string, eraseMessages: boolean): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: id, state: "active" },
      this.stampUpdate({ $set: { state: "deleting", eraseMessages, deletedAt: new Date() } }),
    );
    return n === 1;
  }

  /** Ends a deletion: no address, no password, no second factor; the username held until `releaseAt`. */
  finishDeletion(id: string, releaseAt: Date): Promise<number> {
    return this.collection.updateOne(
      { _id: id, state: "deleting" },
      this.stampUpdate({
        $set: {
          state: "deleted",
          email: `deleted:${id}`,
          emailVerified: false,
          passwordHash: "",
          usernameReleaseAt: releaseAt,
        },
        $unset: { mfa: true, mfaPending: true, eraseMessages: true },
      }),
    );
  }

  /** Deletions a failure cut off (their node died, a service was down), to finish. */
  findDeleting(limit = 20): Promise<Account[]> {
    return this.collection.find({ state: "deleting" }, { limit });
  }

  /** Deleted accounts whose username hold has passed. */
  findUsernamesDue(now: Date, limit = 100): Promise<Account[]> {
    return this.collection.find({ usernameReleaseAt: { $lte: now } }, { limit });
  }

  /** Frees a deleted account's username for anyone to register. */
  releaseUsername(id: string): Promise<number> {
    return this.collection.updateOne(
      { _id: id, state: "deleted" },
      this.stampUpdate({ $set: { usernameLower: `~${id}` }, $unset: { usernameReleaseAt: true } }),
    );
  }

  /** Registrations that never finished (their node died mid-way). */
  findStalePending(olderThan: Date): Promise<Account[]> {
    return this.collection.find({ state: "pending", createdAt: { $lt: olderThan } }, { limit: 100 });
  }
}
