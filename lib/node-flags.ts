/**
 * The Node (V8) flags every platform node starts with: package.json's `start`, docker/Dockerfile's
 * entry point, `npm run cluster`'s runners (scripts/runner-process.ts), the test harness's node
 * processes (test/support/node-process.ts) and the benchmark's platform children use these, and
 * test/unit/lib/node-flags.test.ts checks that they agree. A node started by hand takes them in
 * NODE_OPTIONS (README, "Running a cluster").
 *
 * `--max-semi-space-size=32` (MB): left to itself, V8 sizes the young generation (the semi-spaces
 * new objects are made in) by the heap limit, grows it under any burst of allocation (a connection
 * storm, a traffic peak) and keeps it: on this 24 GiB machine it went from 28 to 100 MB while
 * 10,000 sockets connected, 7 KB of resident memory per idle connection that no connection holds.
 * At 32 MB it stops at 50 MB, with the same CPU per message and the same REST throughput; 16 MB
 * and less cost 2-3 % more CPU per message, and 8 MB 14 % of the REST throughput, in scavenges.
 * The figures: docs/benchmarks.md ("Young generation").
 */
export const PLATFORM_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=32"];
