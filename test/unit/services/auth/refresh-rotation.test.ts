import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidRefreshTokenError } from "../../../../lib/errors.ts";
import {
  hashRefreshToken,
  newRefreshToken,
  RefreshRotation,
  type TokenPair,
} from "../../../../services/auth/refresh-rotation.ts";
import { openPair } from "../../../../services/auth/refresh-successor.ts";
import type {
  RefreshTokenRecord,
  RefreshTokensRepository,
} from "../../../../services/auth/refresh-tokens.repo.ts";
import type { PreviousToken, Session, SessionsRepository } from "../../../../services/auth/sessions.repo.ts";

/** The repositories' semantics over maps; `findByToken` waits at a barrier when one is set. */
function fakeStore() {
  const sessions = new Map<string, Session>();
  const spent = new Map<string, RefreshTokenRecord>();
  let barrier: { waiting: number; of: number; release?: () => void; done: Promise<void> } | undefined;
  const sessionsRepo = {
    findByToken: async (tokenHash: string) => {
      const found = [...sessions.values()].find((s) => s.tokenHash === tokenHash) ?? null;
      if (barrier) {
        const b = barrier;
        b.waiting += 1;
        if (b.waiting === b.of) b.release?.();
        await b.done;
      }
      return found && structuredClone(found);
    },
    rotate: async (id: string, from: string | undefined, to: string, now: Date, previous?: PreviousToken) => {
      const s = sessions.get(id);
      if (!s || s.revokedAt || s.tokenHash !== from) return false;
      s.tokenHash = to;
      s.lastUsedAt = now;
      if (previous) s.previous = previous;
      else delete s.previous;
      return true;
    },
    findLive: async (id: string, now: Date) => {
      const s = sessions.get(id);
      return s && !s.revokedAt && s.expiresAt > now ? structuredClone(s) : null;
    },
  } as unknown as SessionsRepository;
  const tokensRepo = {
    recordSpent: async (r: Omit<RefreshTokenRecord, "createdAt" | "updatedAt">) => {
      if (!spent.has(r._id)) spent.set(r._id, { ...r, createdAt: new Date(), updatedAt: new Date() });
    },
    find: async (hash: string) => spent.get(hash) ?? null,
    spend: async () => false,
  } as unknown as RefreshTokensRepository;
  return {
    sessions,
    sessionsRepo,
    tokensRepo,
    /** The next `of` findByToken calls all return before any of them goes on. */
    meetAt(of: number) {
      let release: () => void = () => undefined;
      const done = new Promise<void>((r) => {
        release = r;
      });
      barrier = { waiting: 0, of, release, done };
      return () => {
        barrier = undefined;
      };
    },
  };
}

function rotation(graceMs: number) {
  const store = fakeStore();
  const revoked: string[] = [];
  let signed = 0;
  const logic = new RefreshRotation({
    sessions: store.sessionsRepo,
    refreshTokens: store.tokensRepo,
    newPair: async (userId, sessionId): Promise<TokenPair> => {
      signed += 1;
      return {
        accessToken: `at-${userId}-${sessionId}-${signed}`,
        refreshToken: newRefreshToken(),
        expiresIn: 900,
      };
    },
    revokeFamily: async (_userId, sessionId) => {
      revoked.push(sessionId);
      const s = store.sessions.get(sessionId);
      if (s) s.revokedAt = new Date();
    },
    graceMs,
    accessTtlS: 900,
  });
  const token = newRefreshToken();
  const now = new Date();
  store.sessions.set("s1", {
    _id: "s1",
    userId: "u1",
    tokenHash: hashRefreshToken(token),
    userAgent: "",
    ip: "",
    createdAt: now,
    updatedAt: now,
    lastUsedAt: now,
    expiresAt: new Date(now.getTime() + 3_600_000),
  });
  return { logic, store, revoked, token };
}

describe("RefreshRotation", () => {
  test("two refreshes that both find the token current get one pair, and nothing is revoked", async () => {
    const { logic, store, revoked, token } = rotation(5_000);
    const done = store.meetAt(2);
    const [a, b] = await Promise.all([logic.refresh(token), logic.refresh(token)]);
    done();
    assert.deepEqual(b, a);
    assert.deepEqual(revoked, []);
    assert.equal(store.sessions.get("s1")?.tokenHash, hashRefreshToken(a.refreshToken));
  });

  test("with no grace window the loser of that race revokes the session, as before", async () => {
    const { logic, store, revoked, token } = rotation(0);
    const done = store.meetAt(2);
    const results = await Promise.allSettled([logic.refresh(token), logic.refresh(token)]);
    done();
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.ok(lost.reason instanceof InvalidRefreshTokenError);
    assert.deepEqual(revoked, ["s1"]);
  });

  test("the pair is answered again only while the window lasts", async () => {
    const { logic, revoked, token } = rotation(5_000);
    const t0 = new Date();
    const pair = await logic.refresh(token, t0);
    assert.deepEqual(await logic.refresh(token, new Date(t0.getTime() + 4_999)), pair);
    await assert.rejects(logic.refresh(token, new Date(t0.getTime() + 5_000)), InvalidRefreshTokenError);
    assert.deepEqual(revoked, ["s1"]);
  });

  test("the sealed pair opens only with the spent token itself", async () => {
    const { logic, store, token } = rotation(5_000);
    const pair = await logic.refresh(token);
    const sealed = store.sessions.get("s1")?.previous?.sealedPair ?? "";
    assert.ok(sealed.startsWith("v1.") && !sealed.includes(pair.refreshToken));
    assert.deepEqual(openPair(token, sealed), {
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
    });
    assert.equal(openPair(newRefreshToken(), sealed), undefined);
  });
});
