/**
 * Measures argon2id hashes per second at OWASP's minimum (19 MiB, t=2, p=1) in a process of its
 * own: for a fixed time it keeps `concurrency` hashes in flight, with either the `argon2` package
 * or Node's built-in `crypto.argon2`, and reports completed hashes over the elapsed time.
 */
import { argon2 as nodeArgon2, randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import argon2 from "argon2";
import { announce, childArgs } from "./child.ts";

export type HashImpl = "argon2-npm" | "node-crypto";

export const OWASP_MIN = { memoryKiB: 19_456, timeCost: 2, parallelism: 1 } as const;

function hashWith(impl: HashImpl, password: string): Promise<unknown> {
  if (impl === "argon2-npm") {
    return argon2.hash(password, {
      type: argon2.argon2id,
      memoryCost: OWASP_MIN.memoryKiB,
      timeCost: OWASP_MIN.timeCost,
      parallelism: OWASP_MIN.parallelism,
    });
  }
  return new Promise((resolve, reject) => {
    nodeArgon2(
      "argon2id",
      {
        message: password,
        nonce: randomBytes(16),
        parallelism: OWASP_MIN.parallelism,
        tagLength: 32,
        memory: OWASP_MIN.memoryKiB,
        passes: OWASP_MIN.timeCost,
      },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

async function measure(impl: HashImpl, concurrency: number, durationS: number) {
  await hashWith(impl, "warm-up-password");
  const start = performance.now();
  const deadline = start + durationS * 1000;
  let completed = 0;
  const lane = async (id: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await hashWith(impl, `bench-password-${id}-${i}`);
      completed += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, id) => lane(id)));
  const elapsedS = (performance.now() - start) / 1000;
  return { impl, concurrency, completed, elapsedS, rate: completed / elapsedS };
}

if (import.meta.main) {
  const { impl, concurrency, durationS } = childArgs<{
    impl: HashImpl;
    concurrency: number;
    durationS: number;
  }>();
  announce("result", await measure(impl, concurrency, durationS));
}
