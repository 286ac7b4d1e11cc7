/**
 * The open-loop generator in a process of its own, so its CPU is its own and is reported beside
 * the result: `runChild("open-loop", "./open-loop-child.ts", options)`. Bodiless requests only
 * (reads); a generator that builds a body per request runs in the runner (load.ts openLoop).
 * With `warmupS`, it first sends at the same rate for that long, unmeasured.
 */
import { announce, childArgs } from "./child.ts";
import { type OpenLoop, openLoop } from "./load.ts";

const { warmupS, ...options } = childArgs<Omit<OpenLoop, "body"> & { warmupS?: number }>();
// A fresh process sends late while its code is cold (tens of ms at 15,000/s, all counted against
// the server): it warms up at the same rate first, unmeasured.
if (warmupS) await openLoop({ ...options, durationS: warmupS });
const started = performance.now();
const before = process.cpuUsage();
const result = await openLoop(options);
const used = process.cpuUsage(before);
const elapsedS = (performance.now() - started) / 1000;
announce("result", { result, cores: (used.user + used.system) / 1e6 / elapsedS });
process.exit(0);
