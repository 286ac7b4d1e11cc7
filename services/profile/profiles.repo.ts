import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

export interface Profile {
  _id: string;
  email: string;
  username: string;
  usernameLower: string;
  displayName: string;
  bio: string | null;
  avatarUrl: string | null;
  /** Kept in step by the auth service; missing on profiles made before verification existed. */
  emailVerified?: boolean;
  /** The account was deleted: everything personal is erased and the username freed here. */
  deleted?: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export const DELETED_DISPLAY_NAME = "Deleted user";

export type ProfileChanges = Partial<Pick<Profile, "displayName" | "bio" | "avatarUrl">>;

export class ProfilesRepository extends BaseRepository<Profile> {
  indexes(): IndexSpec[] {
    return [{ name: "username_unique", fields: { usernameLower: 1 }, unique: true }];
  }

  /**
   * Idempotent: a retried create of the same id leaves one profile. `createdAt`, when given, is
   * the account's, so the user has one creation time in every answer.
   */
  async create(input: {
    id: string;
    email: string;
    username: string;
    displayName: string;
    /** Only for an account made verified (the seeding entry point); registration leaves it out. */
    emailVerified?: boolean;
    createdAt?: string;
  }): Promise<Profile> {
    const existing = await this.collection.findOne({ _id: input.id });
    if (existing) return existing;
    return this.collection.insertOne(
      this.stampNew(
        {
          _id: input.id,
          email: input.email,
          username: input.username,
          usernameLower: input.username.toLowerCase(),
          displayName: input.displayName,
          bio: null,
          avatarUrl: null,
          ...(input.emailVerified === undefined ? {} : { emailVerified: input.emailVerified }),
        },
        input.createdAt === undefined ? undefined : new Date(input.createdAt),
      ) as Profile,
    );
  }

  remove(id: string): Promise<number> {
    return this.collection.deleteOne({ _id: id });
  }

  findById(id: string): Promise<Profile | null> {
    return this.collection.findOne({ _id: id });
  }

  findByUsername(username: string): Promise<Profile | null> {
    return this.collection.findOne({ usernameLower: username.toLowerCase() });
  }

  update(id: string, changes: ProfileChanges): Promise<Profile | null> {
    return this.collection.findOneAndUpdate({ _id: id }, this.stampUpdate({ $set: { ...changes } }));
  }

  setEmail(id: string, email: string, emailVerified: boolean): Promise<number> {
    return this.collection.updateOne(
      { _id: id, deleted: { $exists: false } },
      this.stampUpdate({ $set: { email, emailVerified } }),
    );
  }

  /** Erases what was personal; the id stays, so messages still name their (deleted) sender. */
  erase(id: string): Promise<number> {
    return this.collection.updateOne(
      { _id: id },
      this.stampUpdate({
        $set: {
          email: "",
          emailVerified: false,
          username: "",
          usernameLower: `~${id}`,
          displayName: DELETED_DISPLAY_NAME,
          bio: null,
          avatarUrl: null,
          deleted: true,
        },
      }),
    );
  }

  /** Usernames starting with the prefix (case-insensitive), in order, after the cursor. */
  searchByPrefix(prefix: string, after: string | undefined, limit: number): Promise<Profile[]> {
    const lower = prefix.toLowerCase();
    const filter: Record<string, unknown> = {
      usernameLower: after ? { $prefix: lower, $gt: after } : { $prefix: lower },
    };
    return this.collection.find(filter, { sort: { usernameLower: 1 }, limit });
  }
}
