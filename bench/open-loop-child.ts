/**
 * The open-loop generator in a process of its own, so its CPU is its own and is reported beside
 * the result: `runChild("open-loop", "./open-loop-child.ts", options)`. Bodiless requests only
 * (reads); a generator that builds a body per request runs in the runner (load.ts openLoop).
 */
import { announce, childArgs } from "./child.ts";
import { type OpenLoop, openLoop } from "./load.ts";

const options = childArgs<Omit<OpenLoop, "body">>();
const started = performance.now();
const before = process.cpuUsage();
const result = await openLoop(options);
const used = process.cpuUsage(before);
const elapsedS = (performance.now() - started) / 1000;
announce("result", { result, cores: (used.user + used.system) / 1e6 / elapsedS });
process.exit(0);
