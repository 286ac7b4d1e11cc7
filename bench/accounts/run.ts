/**
 * The accounts benchmark: `npm run bench -- --only accounts [options]` (or
 * `npx node bench/accounts/run.ts [options]`). The embedded platform in a child process (as
 * `npm start` runs it), mailing over SMTP to a real Mailpit; this process is the client.
 *
 * 1. Login with two-factor vs plain login: `--concurrency` clients sign in for `--duration`
 *    seconds, plain (POST /auth/login) and with two-factor (login, then POST /auth/2fa/verify with
 *    a fresh code), in alternating runs; the figure is sign-ins per second, and the ratio of the time
 *    per sign-in (plain rate / two-factor rate; target <= 1.1: both are bound by the password hash).
 * 2. A mail burst: the p99 latency of `GET /users/:id` at `--concurrency` readers for `--duration`
 *    seconds while 1,000 password resets are asked for (50 clients) at the start of the run: for
 *    accounts, so 1,000 mails are made and sent, and, as the baseline, for addresses of no account
 *    (the same requests and answers, no mail). The ratio of the two p99s is what the mails cost
 *    other requests (target <= 1.1); the p99 with no burst at all, and how long Mailpit took to hold
 *    all 1,000 mails, are info.
 * 3. Web Push: `--push-users` offline members of one group, each with a push subscription at a
 *    local push-service stand-in (test/support/push-service.ts, which verifies the VAPID JWT and
 *    decrypts every push in this process). A message resolves at most 50 mentions, so they are
 *    mentioned by one message per 50, all sent at once: the time from the first send to the last
 *    push received (target: under 1 s for 1,000).
 *
 * Every figure is the median over `--runs` runs. Only 127.0.0.1 is reached (guard.ts); every
 * process started is stopped by pid. Writes bench/results/accounts-latest.{json,md}.
 */
import "../guard.ts";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loadConfig } from "../../lib/config.ts";
import { type SeededUser, seedStore } from "../../scripts/seed.ts";
import { TOTP_PERIOD_S, totpCode } from "../../services/auth/two-factor.ts";
import { MAX_MENTION_NAMES } from "../../services/chat/mentions.ts";
import { type MailpitHandle, startMailpit } from "../../test/harness/mailpit.ts";
import { tempDir } from "../../test/support/platform.ts";
import { median } from "../figures.ts";
import { startChild, stopAll } from "../processes.ts";
import { machine } from "../report.ts";
import { BENCH_ENV } from "../ws/topology.ts";

const USAGE = `usage: npm run bench -- --only accounts [options]   (or: npx node bench/accounts/run.ts [options])
  --runs N          measured runs of every figure (default 3); each figure is their median
  --duration S      seconds per run (default 8)
  --concurrency N   clients at once in parts 1 and 2 (default 4)
  --mfa-users N     accounts with two-factor on (default 600; each signs in at most twice a 30 s step)
  --push-users N    offline members pushed to by one group message (default 1000; 0 skips part 3)
  --cpu-prof        the platform child writes a V8 CPU profile to bench/results/profiles/accounts-embedded.cpuprofile
  --env NAME=VALUE  a setting of the platform node (lib/config.ts), over the bench's own; repeatable`;

const RESULTS = path.resolve(import.meta.dirname, "..", "results");
const PASSWORD = "bench-accounts-password-1";
const BURST = 1_000;

/** A seeded user, and the last TOTP step this client used for it (the server refuses a step twice). */
type Seeded = SeededUser & { lastStep?: number };

/** Seeds through the platform's documented entry point (scripts/seed.ts), every account verified. */
async function seed(env: Record<string, string>, plain: number, mfa: number): Promise<Seeded[]> {
  const { users } = await seedStore(loadConfig(env), {
    users: plain + mfa,
    groupSize: 0,
    twoFactor: mfa,
    password: PASSWORD,
    emailDomain: "bench.test",
    label: "accounts bench",
  });
  return users;
}

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Runs `work` on `concurrency` loops for `seconds`; answers completions per second and failures. */
async function closedLoop(
  concurrency: number,
  seconds: number,
  work: () => Promise<boolean>,
): Promise<{ rate: number; ok: number; failed: number; latencies: number[] }> {
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (await work().catch(() => false)) ok++;
        else failed++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { rate: ok / ((performance.now() - started) / 1000), ok, failed, latencies };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

export async function runAccountsBench(argv: string[], command: string): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: "string", default: "3" },
      duration: { type: "string", default: "8" },
      concurrency: { type: "string", default: "4" },
      "mfa-users": { type: "string", default: "600" },
      "push-users": { type: "string", default: "1000" },
      env: { type: "string", multiple: true, default: [] },
      "cpu-prof": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const extraEnv = Object.fromEntries(
    (values.env ?? []).map((pair) => {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const runs = Number(values.runs);
  const duration = Number(values.duration);
  const concurrency = Number(values.concurrency);
  const mfaCount = Number(values["mfa-users"]);
  const pushCount = Number(values["push-users"]);
  const log = (m: string) => process.stderr.write(`[accounts] ${m}\n`);

  const dir = await tempDir("social-bench-accounts-");
  let mailpit: MailpitHandle | undefined;
  try {
    mailpit = await startMailpit();
    const unlimited = "1000000/1";
    const env: Record<string, string> = {
      ...BENCH_ENV,
      DATA_DIR: path.join(dir.dir, "data"),
      NAMESPACE: `benchaccounts${process.pid}`,
      SMTP_URL: mailpit.smtpUrl,
      PUBLIC_URL: "https://social.test",
      RATE_LIMIT_LOGIN_IP: unlimited,
      RATE_LIMIT_LOGIN_ACCOUNT: unlimited,
      RATE_LIMIT_REGISTER_IP: unlimited,
      RATE_LIMIT_MAIL_ADDRESS: unlimited,
      RATE_LIMIT_MAIL_IP: unlimited,
      RATE_LIMIT_TOKEN_IP: unlimited,
      RATE_LIMIT_SEND_USER: unlimited,
      RATE_LIMIT_CHAT_CREATE_USER: unlimited,
      PUSH_ALLOW_INSECURE: "true",
      CHAT_MAX_GROUP_MEMBERS: String(pushCount + 10),
      CHAT_MAX_MESSAGE_LENGTH: "100000",
      BODY_LIMIT_BYTES: "1048576",
      ...extraEnv,
    };
    const plainCount = 100;
    log(`seeding ${plainCount} plain and ${mfaCount} two-factor accounts`);
    const users = await seed(env, plainCount, mfaCount);
    const plain = users.filter((u) => !u.totpSecret);
    const mfa = users.filter((u) => u.totpSecret);
    const child = await startChild(
      "accounts-embedded",
      "./files/node.ts",
      {
        brokers: [["auth", "profile", "chat", "gateway"]],
        env,
        memoryFile: path.join(dir.dir, "memory.json"),
      },
      {
        timeoutMs: 180_000,
        nodeFlags: values["cpu-prof"]
          ? [
              "--cpu-prof",
              `--cpu-prof-dir=${path.join(RESULTS, "profiles")}`,
              "--cpu-prof-name=accounts-embedded.cpuprofile",
            ]
          : [],
      },
    );
    const url = String(child.data.url);
    log(`platform at ${url}`);

    // ---- 1. sign-ins ----
    let p = 0;
    const plainLogin = async () => {
      const u = plain[p++ % plain.length] as Seeded;
      return (await post(`${url}/auth/login`, { email: u.email, password: PASSWORD })).status === 200;
    };
    let m = 0;
    const mfaLogin = async () => {
      // An account whose next step is free: the current one, or the next within the window.
      const step = Math.floor(Date.now() / 1000 / TOTP_PERIOD_S);
      let u: Seeded | undefined;
      let use = step;
      for (let tries = 0; tries < mfa.length && !u; tries++) {
        const c = mfa[m++ % mfa.length] as Seeded;
        const last = c.lastStep ?? 0;
        if (last < step) use = step;
        else if (last < step + 1) use = step + 1;
        else continue;
        c.lastStep = use;
        u = c;
      }
      if (!u?.totpSecret) throw new Error("every two-factor account used its steps; give more --mfa-users");
      const login = await post(`${url}/auth/login`, { email: u.email, password: PASSWORD });
      const mfaToken = (login.body as { mfaToken?: string }).mfaToken;
      if (login.status !== 200 || !mfaToken) return false;
      const code = totpCode(u.totpSecret, use * TOTP_PERIOD_S * 1000 + 1000);
      return (await post(`${url}/auth/2fa/verify`, { mfaToken, code })).status === 200;
    };
    const plainRates: number[] = [];
    const mfaRates: number[] = [];
    let loginFailures = 0;
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? ["plain", "mfa"] : ["mfa", "plain"];
      for (const kind of order) {
        const r = await closedLoop(concurrency, duration, kind === "plain" ? plainLogin : mfaLogin);
        loginFailures += r.failed;
        (kind === "plain" ? plainRates : mfaRates).push(r.rate);
        log(`run ${run + 1}: ${kind} ${r.rate.toFixed(1)}/s (${r.failed} failed)`);
      }
    }
    const plainRate = median([...plainRates].sort((a, b) => a - b));
    const mfaRate = median([...mfaRates].sort((a, b) => a - b));

    // ---- 1b. a reset's answer time, for an account's address and for none ----
    const resetTimes = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 400; i++) {
      const known = i % 2 === 0;
      const u = users[i % users.length] as Seeded;
      const email = known ? u.email : `nobody-${i}-${u.username}@bench.test`;
      const t = performance.now();
      const res = await post(`${url}/auth/password-reset`, { email });
      (known ? resetTimes.known : resetTimes.unknown).push(performance.now() - t);
      if (res.status !== 202) throw new Error(`reset answered ${res.status}`);
    }
    const resetKnownMs = median([...resetTimes.known].sort((a, b) => a - b));
    const resetUnknownMs = median([...resetTimes.unknown].sort((a, b) => a - b));
    await mailpit.waitForMail((users[0] as Seeded).email, { timeoutMs: 60_000 }).catch(() => undefined);

    // ---- 2. mail burst ----
    const reader = plain[0] as Seeded;
    const readerToken = (
      (await post(`${url}/auth/login`, { email: reader.email, password: PASSWORD })).body as {
        accessToken: string;
      }
    ).accessToken;
    let q = 0;
    const read = async () => {
      const u = users[q++ % users.length] as Seeded;
      const res = await fetch(`${url}/users/${u.id}`, {
        headers: { authorization: `Bearer ${readerToken}` },
      });
      await res.arrayBuffer();
      return res.status === 200;
    };
    const quietP99: number[] = [];
    const burstP99: number[] = [];
    const askOnlyP99: number[] = [];
    const mailSeconds: number[] = [];
    let burstFailures = 0;
    /** 1,000 reset asks from 50 clients while the readers run; `mail`: for accounts, so 1,000 mails go out. */
    const burst = async (mail: boolean) => {
      if (mail) await mailpit?.deleteAll();
      const t0 = performance.now();
      let next = 0;
      const asks = Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < BURST) {
            const i = next++;
            const u = users[i % users.length] as Seeded;
            const email = mail ? u.email : `nobody-${i}-${u.username}@bench.test`;
            const res = await post(`${url}/auth/password-reset`, { email });
            if (res.status !== 202) burstFailures++;
          }
        }),
      );
      const r = await closedLoop(concurrency, duration, read);
      await asks;
      if (mail) {
        for (;;) {
          const count = (await mailpit?.messages())?.length ?? 0;
          if (count >= BURST || performance.now() - t0 > 120_000) {
            mailSeconds.push((performance.now() - t0) / 1000);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      return percentile(r.latencies, 0.99);
    };
    const kinds = ["quiet", "asks", "mails"] as const;
    for (let run = 0; run < runs; run++) {
      const order = [...kinds.slice(run % 3), ...kinds.slice(0, run % 3)];
      for (const kind of order) {
        if (kind === "quiet")
          quietP99.push(percentile((await closedLoop(concurrency, duration, read)).latencies, 0.99));
        else if (kind === "asks") askOnlyP99.push(await burst(false));
        else burstP99.push(await burst(true));
      }
      log(
        `run ${run + 1}: p99 quiet ${quietP99.at(-1)?.toFixed(1)} ms, 1,000 asks for no account ${askOnlyP99.at(-1)?.toFixed(1)} ms, 1,000 resets mailed ${burstP99.at(-1)?.toFixed(1)} ms`,
      );
    }
    const med = (xs: number[]) => median([...xs].sort((a, b) => a - b));

    // ---- 3. pushes ----
    let push: { seconds: number[]; received: number[] } | { skipped: string } = { skipped: "--push-users 0" };
    if (pushCount > 0) push = await pushPart(url, env, pushCount, runs, log);

    const report = {
      command,
      machine: machine(),
      at: new Date().toISOString(),
      settings: { runs, duration, concurrency, mfaUsers: mfaCount, pushUsers: pushCount },
      login: {
        plainPerS: plainRate,
        mfaPerS: mfaRate,
        ratio: plainRate / mfaRate,
        target: "<= 1.1",
        plainRuns: plainRates,
        mfaRuns: mfaRates,
        failures: loginFailures,
      },
      resetAnswer: { knownMs: resetKnownMs, unknownMs: resetUnknownMs, ratio: resetKnownMs / resetUnknownMs },
      mailBurst: {
        quietP99Ms: med(quietP99),
        askOnlyP99Ms: med(askOnlyP99),
        burstP99Ms: med(burstP99),
        ratio: med(burstP99) / med(askOnlyP99),
        ratioToQuiet: med(burstP99) / med(quietP99),
        target: "<= 1.1",
        mailsInMailpitS: median([...mailSeconds].sort((a, b) => a - b)),
        failures: burstFailures,
      },
      push,
    };
    await mkdir(RESULTS, { recursive: true });
    await writeFile(path.join(RESULTS, "accounts-latest.json"), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(path.join(RESULTS, "accounts-latest.md"), markdown(report));
    process.stdout.write(markdown(report));
    await child.stop();
    return 0;
  } finally {
    await stopAll();
    await mailpit?.stop();
    await dir.remove();
  }
}

async function pushPart(
  url: string,
  env: Record<string, string>,
  count: number,
  runs: number,
  log: (m: string) => void,
): Promise<{ seconds: number[]; received: number[] } | { skipped: string }> {
  let service: typeof import("../../test/support/push-service.ts");
  try {
    service = await import("../../test/support/push-service.ts");
  } catch (err) {
    return { skipped: `no push-service stand-in: ${String(err)}` };
  }
  void env;
  const stand = await service.startPushService();
  try {
    const register = async (i: number) => {
      const res = await post(`${url}/auth/register`, {
        email: `push${i}-${Date.now().toString(36)}@bench.test`,
        username: `push${Date.now().toString(36).slice(-4)}${i}`,
        password: PASSWORD,
      });
      if (res.status !== 201) throw new Error(`register ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as { user: { id: string; username: string }; accessToken: string };
    };
    log(`registering ${count} push members and the sender`);
    const sender = await register(0);
    const members: { user: { id: string; username: string }; accessToken: string }[] = [];
    for (let i = 1; i <= count; i += 8) {
      members.push(
        ...(await Promise.all(Array.from({ length: Math.min(8, count - i + 1) }, (_, k) => register(i + k)))),
      );
    }
    const endpoints: string[] = [];
    for (const m of members) {
      const sub = stand.createSubscription();
      endpoints.push(sub.endpoint);
      const res = await post(`${url}/push/subscriptions`, sub, m.accessToken);
      if (res.status !== 201) throw new Error(`subscribe ${res.status} ${JSON.stringify(res.body)}`);
    }
    const group = await post(
      `${url}/chats`,
      { type: "group", name: "push bench", memberIds: members.map((m) => m.user.id) },
      sender.accessToken,
    );
    const chatId = (group.body as { id: string }).id;
    // A message resolves at most MAX_MENTION_NAMES mentions (services/chat/mentions.ts), so the
    // 1,000 pushes come from one message per 50 members, all sent at once.
    const perMessage = MAX_MENTION_NAMES;
    const batches: string[] = [];
    for (let k = 0; k < members.length; k += perMessage) {
      batches.push(
        members
          .slice(k, k + perMessage)
          .map((m) => `@${m.user.username}`)
          .join(" "),
      );
    }
    const seconds: number[] = [];
    const received: number[] = [];
    for (let run = 0; run < runs; run++) {
      const before = stand.total();
      const t0 = performance.now();
      const answers = await Promise.all(
        batches.map((mentions, k) =>
          post(
            `${url}/chats/${chatId}/messages`,
            { message: `run ${run} ${mentions}`, clientMsgId: `push-${run}-${k}-${Date.now()}` },
            sender.accessToken,
          ),
        ),
      );
      const refused = answers.find((a) => a.status !== 201);
      if (refused) throw new Error(`send ${refused.status} ${JSON.stringify(refused.body)}`);
      while (stand.total() - before < count && performance.now() - t0 < 30_000) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      seconds.push((performance.now() - t0) / 1000);
      received.push(stand.total() - before);
      log(
        `run ${run + 1}: ${received.at(-1)} pushes from ${batches.length} messages in ${seconds.at(-1)?.toFixed(3)} s`,
      );
    }
    return { seconds, received };
  } finally {
    await stand.close();
  }
}

function markdown(r: {
  command: string;
  at: string;
  login: { plainPerS: number; mfaPerS: number; ratio: number; failures: number };
  resetAnswer: { knownMs: number; unknownMs: number; ratio: number };
  mailBurst: {
    quietP99Ms: number;
    askOnlyP99Ms: number;
    burstP99Ms: number;
    ratioToQuiet: number;
    ratio: number;
    mailsInMailpitS: number;
    failures: number;
  };
  push: { seconds: number[]; received: number[] } | { skipped: string };
}): string {
  const pushLine =
    "skipped" in r.push
      ? `| Pushes to the offline members of a group | skipped: ${r.push.skipped} | | |`
      : `| Pushes to ${Math.min(...r.push.received)} offline members of a group (mentioned 50 a message) | ${median([...r.push.seconds].sort((a, b) => a - b)).toFixed(3)} s from the first send to the last push | < 1 s | ${median([...r.push.seconds].sort((a, b) => a - b)) < 1 ? "met" : "missed"} |`;
  return [
    `# Accounts benchmark (${r.at})`,
    "",
    `\`${r.command}\``,
    "",
    "| Figure | Measured | Target | |",
    "|---|---|---|---|",
    `| Sign-ins per second, plain / two-factor | ${r.login.plainPerS.toFixed(1)} / ${r.login.mfaPerS.toFixed(1)} (ratio ${r.login.ratio.toFixed(3)}; ${r.login.failures} failed) | ratio <= 1.1 | ${r.login.ratio <= 1.1 ? "met" : "missed"} |`,
    `| p99 of GET /users/:id during 1,000 reset asks: for accounts (1,000 mails) / for no account (no mail) | ${r.mailBurst.burstP99Ms.toFixed(1)} ms / ${r.mailBurst.askOnlyP99Ms.toFixed(1)} ms (ratio ${r.mailBurst.ratio.toFixed(3)}; ${r.mailBurst.failures} failed) | ratio <= 1.1 | ${r.mailBurst.ratio <= 1.1 ? "met" : "missed"} |`,
    `| p99 of GET /users/:id with no burst | ${r.mailBurst.quietP99Ms.toFixed(1)} ms (the mailed burst: ${r.mailBurst.ratioToQuiet.toFixed(2)} times it) | info | |`,
    `| Answer time of a reset, an account's address / no account's (200 each, alternating) | ${r.resetAnswer.knownMs.toFixed(2)} ms / ${r.resetAnswer.unknownMs.toFixed(2)} ms (ratio ${r.resetAnswer.ratio.toFixed(3)}) | the same (info) | |`,
    `| 1,000 reset mails all in Mailpit | ${r.mailBurst.mailsInMailpitS.toFixed(1)} s after the first ask | info | |`,
    pushLine,
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runAccountsBench(
    process.argv.slice(2),
    `npx node bench/accounts/run.ts ${process.argv.slice(2).join(" ")}`,
  ).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(
        `accounts failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
