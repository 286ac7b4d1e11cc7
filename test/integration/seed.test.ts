/**
 * The seeding entry point (scripts/seed.ts, `npm run seed`): what it writes into an embedded store
 * is what the platform then serves: the tokens it minted are accepted, the accounts sign in with the
 * password given (two-factor ones ask for a code of their secret), the addresses are verified and
 * each group chat holds its members. Bad arguments are refused before anything is written.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { ApiClient, isMfaChallenge } from "../../client/rest-client.ts";
import { loadConfig } from "../../lib/config.ts";
import { type Seeded, seedStore } from "../../scripts/seed.ts";
import { totpCode } from "../../services/auth/two-factor.ts";
import { type PlatformNode, startNode, tempDir, waitReady } from "../support/platform.ts";

const PASSWORD = "seeded-password-1";
const ROOT = path.resolve(import.meta.dirname, "..", "..");

let data: Awaited<ReturnType<typeof tempDir>>;
let seeded: Seeded;
let node: PlatformNode;

before(async () => {
  data = await tempDir("social-seed-");
  seeded = await seedStore(loadConfig({ DATA_DIR: data.dir }), {
    users: 5,
    groupSize: 3,
    twoFactor: 2,
    password: PASSWORD,
    usernamePrefix: "seeded",
  });
  node = await startNode(["auth", "profile", "chat", "gateway"], { DATA_DIR: data.dir });
  await waitReady(node.url);
});
after(async () => {
  await node?.stop();
  await data?.remove();
});

describe("npm run seed", () => {
  test("writes the users and groups asked for, the last ones with two-factor on", () => {
    assert.deepEqual(
      seeded.users.map((u) => u.username),
      ["seeded0", "seeded1", "seeded2", "seeded3", "seeded4"],
    );
    assert.deepEqual(
      seeded.users.map((u) => u.totpSecret !== undefined),
      [false, false, false, true, true],
    );
    assert.deepEqual(
      seeded.groups.map((g) => g.members.length),
      [3, 2],
    );
    for (const u of seeded.users) {
      assert.equal(u.email, `${u.username}@seed.test`);
      assert.ok(seeded.groups.some((g) => g.id === u.chatId && g.members.includes(u.id)));
    }
  });

  test("each minted token is accepted; the account is verified and the group chat is the user's", async () => {
    for (const u of seeded.users) {
      const res = await fetch(`${node.url}/users/me`, { headers: { authorization: `Bearer ${u.token}` } });
      assert.equal(res.status, 200);
      const me = (await res.json()) as { id: string; username: string; emailVerified: boolean };
      assert.equal(me.id, u.id);
      assert.equal(me.username, u.username);
      assert.equal(me.emailVerified, true);
      const chat = await fetch(`${node.url}/chats/${u.chatId}`, {
        headers: { authorization: `Bearer ${u.token}` },
      });
      assert.equal(chat.status, 200);
    }
  });

  test("a plain account signs in with the password; a two-factor one asks for its code, then signs in", async () => {
    const [plain] = seeded.users;
    const api = new ApiClient(node.url);
    const signedIn = await api.login({ username: plain?.username ?? "", password: PASSWORD });
    assert.equal(isMfaChallenge(signedIn), false);
    assert.equal((await api.me()).id, plain?.id);

    const twoFactor = seeded.users[4];
    assert.ok(twoFactor?.totpSecret);
    const second = new ApiClient(node.url);
    const challenge = await second.login({ email: twoFactor.email, password: PASSWORD });
    assert.ok(isMfaChallenge(challenge));
    await second.verifyMfa({ mfaToken: challenge.mfaToken, code: totpCode(twoFactor.totpSecret) });
    assert.equal((await second.account()).mfaEnabled, true);
    assert.equal((await second.me()).id, twoFactor.id);

    const wrong = await new ApiClient(node.url, { retry: false })
      .login({ username: plain?.username ?? "", password: "not-the-password" })
      .catch((e: { status: number }) => e);
    assert.equal((wrong as { status: number }).status, 401);
  });

  test("more two-factor users than users, or bad numbers, are refused and write nothing", async () => {
    const empty = await tempDir("social-seed-bad-");
    try {
      await assert.rejects(
        seedStore(loadConfig({ DATA_DIR: empty.dir }), { users: 2, groupSize: 0, twoFactor: 3 }),
        RangeError,
      );
      for (const args of [
        ["--users", "2", "--two-factor", "3"],
        ["--users", "0"],
        ["--users", "3", "--group-size", "-1"],
        ["--users", "3", "--two-factor", "1.5"],
      ]) {
        const run = await promisify(execFile)(process.execPath, ["scripts/seed.ts", ...args], {
          cwd: ROOT,
          env: { ...process.env, DATA_DIR: empty.dir },
        }).then(
          () => ({ code: 0, stderr: "" }),
          (e: { code: number; stderr: string }) => e,
        );
        assert.equal(run.code, 2, args.join(" "));
        assert.match(run.stderr, /usage: npm run seed/);
      }
      assert.deepEqual(await readdir(empty.dir), []);
    } finally {
      await empty.remove();
    }
  });
});
