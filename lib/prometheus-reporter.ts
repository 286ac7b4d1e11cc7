/**
 * Moleculer's Prometheus reporter, with one fix: it writes a histogram's `_sum` and `_count` only
 * when the histogram also keeps quantiles, so a histogram with buckets alone (every custom one
 * here: quantiles keep each observed value for a minute, too costly on hot paths) would lack the
 * two series that rates and averages are computed from. This reporter writes those histograms
 * itself, in the text format Prometheus documents (buckets in ascending order, `+Inf`, `_sum`,
 * `_count`), and leaves every other metric to Moleculer.
 *
 * It also listens where METRICS_HOST says (127.0.0.1 unless set), not on every interface as
 * Moleculer's does: `/metrics` names routes, nodes and error counts, and is not for the public
 * (docs/observability.md, "Who can scrape").
 */
import { type MetricRegistry, MetricReporters } from "moleculer";
import type { PlatformConfig } from "./config.ts";
import { PLATFORM_CONFIG } from "./platform.ts";

interface BucketHistogram {
  name: string;
  type: string;
  description?: string;
  buckets?: number[];
  quantiles?: number[];
  snapshot(): {
    labels: Record<string, unknown>;
    buckets: Record<string, number>;
    sum: number;
    count: number;
  }[];
}

export class PrometheusReporter extends MetricReporters.Prometheus {
  override init(registry: MetricRegistry): void {
    const options = registry.broker.options as Record<string, unknown>;
    const config = options[PLATFORM_CONFIG] as PlatformConfig | undefined;
    (this.opts as { host?: string }).host = config?.metricsHost ?? "127.0.0.1";
    super.init(registry);
  }

  override matchMetricName(name: string): boolean {
    return super.matchMetricName(name) && !this.bucketOnly(name);
  }

  override generatePrometheusResponse(): string {
    const lines = [super.generatePrometheusResponse()];
    for (const metric of this.metrics()) {
      if (!isBucketOnly(metric) || !super.matchMetricName(metric.name)) continue;
      const snapshot = metric.snapshot();
      if (snapshot.length === 0) continue;
      const name = this.formatMetricName(metric.name).replace(/[.-]/g, "_");
      lines.push(`# HELP ${name} ${metric.description ?? metric.name}`, `# TYPE ${name} histogram`);
      for (const item of snapshot) {
        for (const le of metric.buckets ?? []) {
          lines.push(`${name}_bucket${this.labelsToStr(item.labels, { le })} ${item.buckets[le] ?? 0}`);
        }
        lines.push(`${name}_bucket${this.labelsToStr(item.labels, { le: "+Inf" })} ${item.count}`);
        const labels = this.labelsToStr(item.labels);
        lines.push(`${name}_sum${labels} ${item.sum}`, `${name}_count${labels} ${item.count}`);
      }
      lines.push("");
    }
    return lines.join("\n");
  }

  private metrics(): BucketHistogram[] {
    return [...(this.registry as unknown as { store: Map<string, BucketHistogram> }).store.values()];
  }

  private bucketOnly(name: string): boolean {
    const metric = (this.registry as unknown as { store: Map<string, BucketHistogram> }).store.get(name);
    return metric !== undefined && isBucketOnly(metric);
  }
}

function isBucketOnly(metric: BucketHistogram): boolean {
  return metric.type === "histogram" && Array.isArray(metric.buckets) && !metric.quantiles;
}
