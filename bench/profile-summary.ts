/**
 * Where a V8 CPU profile (`--cpu-prof`) spends its time: self time by function and by package, and
 * inclusive time by package (the share of busy samples with that package anywhere on the stack).
 * `npm run bench -- --cpu-prof` prints it for each server child; on its own:
 * `node bench/profile-summary.ts FILE.cpuprofile [TOP]`.
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const IDLE = new Set(["(idle)"]);

/** node_modules/<package>, node:internal, the project's own files, or V8's pseudo-frames. */
function areaOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith("node:")) return "node: core";
  const own = /\/(lib|services|gateway|client|bench|test)\//.exec(url);
  return own ? `project ${own[1]}/` : url;
}

function shortUrl(url: string): string {
  const pkg = url.indexOf("node_modules/");
  if (pkg !== -1) return url.slice(pkg + "node_modules/".length);
  return url.replace(/^file:\/\/.*?\/(lib|services|gateway|client|bench|test)\//, "$1/");
}

export async function summarizeProfile(file: string, top = 25): Promise<string> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const areasOnStack = (id: number) => {
    const areas = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (frame) areas.add(areaOf(frame));
    }
    return areas;
  };
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busyUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    if (IDLE.has(node.callFrame.functionName)) {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || "(anonymous)"}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const area = areaOf(node);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    for (const onStack of areasOnStack(id)) inclusive.set(onStack, (inclusive.get(onStack) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1).padStart(5)} %`;
  const ranked = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `busy ${(busyUs / 1e6).toFixed(1)} s, idle ${(idleUs / 1e6).toFixed(1)} s (${((busyUs / (busyUs + idleUs)) * 100).toFixed(0)} % busy); shares are of busy time`,
    "",
    "self time by package:",
    ...ranked(byArea).map(([area, us]) => `${pct(us)}  ${area}`),
    "",
    "inclusive time by package (on the stack):",
    ...ranked(inclusive)
      .filter(([area]) => !area.startsWith("("))
      .map(([area, us]) => `${pct(us)}  ${area}`),
    "",
    "self time by function:",
    ...ranked(byFunction).map(([name, us]) => `${pct(us)}  ${name}`),
  ].join("\n");
}

if (import.meta.main) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: node bench/profile-summary.ts FILE.cpuprofile [TOP]\n");
    process.exit(2);
  }
  process.stdout.write(`${await summarizeProfile(file, top ? Number(top) : undefined)}\n`);
}
