/** Reads a node's /metrics: the samples of the Prometheus text format, and sums over labels. */
import { once } from "node:events";
import type { Server } from "node:http";
import type { ServiceBroker } from "moleculer";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class Scrape {
  readonly samples: Sample[];
  readonly text: string;

  constructor(text: string) {
    this.text = text;
    this.samples = parse(text);
  }

  /** The samples of one series name whose labels include every given label. */
  find(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  }

  /** Sum of the matching samples; 0 when there are none (a series not yet written). */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.find(name, labels).reduce((total, s) => total + s.value, 0);
  }
}

export function metricsUrl(broker: ServiceBroker): string {
  const reporter = (broker.metrics as unknown as { reporter: { server: { address(): { port: number } } }[] })
    .reporter[0];
  if (!reporter) throw new Error("The broker has no metrics reporter");
  return `http://127.0.0.1:${reporter.server.address().port}/metrics`;
}

/**
 * Resolves once the node's /metrics listens: on METRICS_HOST, an address to look up, it binds a
 * moment after the broker is made rather than at once.
 */
export async function metricsListening(broker: ServiceBroker): Promise<void> {
  const server = (broker.metrics as unknown as { reporter: { server?: Server }[] }).reporter[0]?.server;
  if (server && !server.listening) await once(server, "listening");
}

export async function scrape(broker: ServiceBroker): Promise<Scrape> {
  await metricsListening(broker);
  const res = await fetch(metricsUrl(broker));
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return new Scrape(await res.text());
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = LINE.exec(line);
    if (!match) throw new Error(`Not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(LABEL)) {
      labels[key as string] = (value as string).replace(/\\(.)/g, "$1");
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}
