import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { AccessTokenVerifier } from "../../../gateway/access-tokens.ts";
import type { Revocation } from "../../../lib/contracts.ts";

async function keyPair(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "EdDSA" } as JWK };
}

function sign(
  key: Awaited<ReturnType<typeof keyPair>>,
  claims: Record<string, unknown> = {},
  exp: string | number = "5m",
) {
  return new SignJWT({ sid: "s1", ...claims })
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: "at+jwt" })
    .setSubject("u1")
    .setIssuer("iss")
    .setAudience("aud")
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key.privateKey);
}

function verifier(keys: JWK[], revocations: Revocation[] = [], counter = { fetches: 0 }) {
  return new AccessTokenVerifier({
    issuer: "iss",
    audience: "aud",
    fetchJwks: async () => {
      counter.fetches += 1;
      return { keys };
    },
    fetchRevocations: async () => revocations,
  });
}

describe("AccessTokenVerifier", () => {
  test("accepts a token signed by a published key and answers its user and session", async () => {
    const k = await keyPair("k1");
    assert.deepEqual(await verifier([k.jwk]).verify(await sign(k)), { id: "u1", sessionId: "s1" });
  });

  test("refetches the JWKS once for an unknown kid", async () => {
    const k1 = await keyPair("k1");
    const k2 = await keyPair("k2");
    const keys = [k1.jwk];
    const counter = { fetches: 0 };
    const v = verifier(keys, [], counter);
    await v.verify(await sign(k1));
    keys.push(k2.jwk);
    await assert.rejects(v.verify(await sign(k2)), { code: 401 }, "within the refetch interval");
    assert.equal(counter.fetches, 1);
  });

  test("refuses wrong issuer, audience, type, expiry and revoked sessions", async () => {
    const k = await keyPair("k1");
    const until = new Date(Date.now() + 60_000).toISOString();
    const v = verifier([k.jwk], [{ sessionId: "revoked", until }]);
    const bad = [
      await new SignJWT({ sid: "s1" })
        .setProtectedHeader({ alg: "EdDSA", kid: "k1", typ: "at+jwt" })
        .setSubject("u1")
        .setIssuer("other")
        .setAudience("aud")
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(k.privateKey),
      await new SignJWT({ sid: "s1" })
        .setProtectedHeader({ alg: "EdDSA", kid: "k1", typ: "JWT" })
        .setSubject("u1")
        .setIssuer("iss")
        .setAudience("aud")
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(k.privateKey),
      await sign(k, {}, Math.floor(Date.now() / 1000) - 60),
      await sign(k, { sid: "revoked" }),
      await sign(k, { sid: 42 }),
    ];
    for (const token of bad) await assert.rejects(v.verify(token), { code: 401 });
  });

  test("a token verified before is still refused once its session is revoked", async () => {
    const k = await keyPair("k1");
    const v = verifier([k.jwk]);
    const token = await sign(k);
    assert.deepEqual(await v.verify(token), { id: "u1", sessionId: "s1" });
    assert.deepEqual(await v.verify(token), { id: "u1", sessionId: "s1" }, "second use, remembered");
    v.revoke([{ sessionId: "s1", until: new Date(Date.now() + 60_000).toISOString() }]);
    await assert.rejects(v.verify(token), { code: 401, type: "TOKEN_REVOKED" });
  });

  test("a token verified before is refused once it has expired", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: Date.now() });
    const k = await keyPair("k1");
    const v = verifier([k.jwk]);
    const token = await sign(k, {}, Math.floor(Date.now() / 1000) + 60);
    await v.verify(token);
    t.mock.timers.tick(60_000 + 6_000);
    await assert.rejects(v.verify(token), { code: 401, type: "TOKEN_EXPIRED" });
  });

  test("a forged token that shares a cached token's claims is still refused", async () => {
    const k = await keyPair("k1");
    const other = await keyPair("k1");
    const v = verifier([k.jwk]);
    await v.verify(await sign(k));
    await assert.rejects(v.verify(await sign(other)), { code: 401 });
  });

  test("a revocation lapses once every token it covers has expired", () => {
    const v = verifier([]);
    v.revoke([{ sessionId: "old", until: new Date(Date.now() - 1).toISOString() }]);
    v.revoke([{ sessionId: "new", until: new Date(Date.now() + 60_000).toISOString() }]);
    assert.equal(v.isRevoked("old"), false);
    assert.equal(v.isRevoked("new"), true);
  });
});
