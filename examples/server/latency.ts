/**
 * Request latency per route as a Prometheus summary whose quantiles cover a sliding window: the
 * last 30 to 60 s by default, in two HdrHistograms (hdr-histogram-js) per route, the current one
 * and the one before, swapped every `windowMs`. Recording is one bucket increment (~0.1 µs); the
 * quantiles are read at scrape time from the two histograms added together, to 3 significant
 * digits. (prom-client's Summary pushes every observation into a t-digest per age bucket: ~4 µs
 * per request, a tenth of a one-step request's whole cost in examples/server.)
 *
 * An object of prom-client's metric shape (name, help, type, get, reset), registered with
 * `registry.registerMetric`; `_sum` and `_count` are totals since start, as a summary's are.
 *
 *   const latency = new LatencySummary({ name: 'http_request_duration_seconds', help: '…', label: 'route' });
 *   registry.registerMetric(latency as never);
 *   const series = latency.series('predict');   // look a series up once
 *   series.observe(seconds);
 */
import { build, type Histogram } from 'hdr-histogram-js';

export interface LatencySummaryOptions {
  name: string;
  help: string;
  /** The label that tells the series apart (default 'route'). */
  label?: string;
  /** Quantiles reported (default 0.5, 0.9, 0.99). */
  percentiles?: number[];
  /** Each histogram's span, ms (default 30 000: quantiles over the last 30 to 60 s). */
  windowMs?: number;
  /** Clock in ms (default performance.now; tests pass their own). */
  now?: () => number;
}

/** Latencies are kept in µs from 1 µs to 10 min; longer ones count as 10 min. */
const HIGHEST_US = 600e6;
const histogram = (): Histogram => build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, useWebAssembly: false });

class Series {
  private current = histogram();
  private previous = histogram();
  private readonly merged = histogram();
  private started: number;
  count = 0;
  sum = 0;
  constructor(private readonly owner: LatencySummary, readonly value: string) {
    this.started = owner.now();
  }
  /** Records one latency, in seconds. */
  observe(seconds: number): void {
    if (!(seconds >= 0)) throw new TypeError(`${this.owner.name}: expected a latency ≥ 0 s, got ${seconds}`);
    this.rotate();
    this.current.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(seconds * 1e6))));
    this.count++;
    this.sum += seconds;
  }
  /** Moves to a new window when the current one is older than windowMs (both, after two or more). */
  private rotate(): void {
    const elapsed = this.owner.now() - this.started;
    if (elapsed < this.owner.windowMs) return;
    if (elapsed >= 2 * this.owner.windowMs) this.current.reset();
    [this.previous, this.current] = [this.current, this.previous];
    this.current.reset();
    this.started += this.owner.windowMs * Math.floor(elapsed / this.owner.windowMs);
  }
  /** The quantiles over the window, seconds (0 when the window holds no request). */
  quantiles(percentiles: readonly number[]): number[] {
    this.rotate();
    const m = this.merged;
    m.reset();
    m.add(this.previous);
    m.add(this.current);
    return percentiles.map((p) => (m.totalCount === 0 ? 0 : m.getValueAtPercentile(100 * p) / 1e6));
  }
  reset(): void {
    this.current.reset();
    this.previous.reset();
    this.started = this.owner.now();
    this.count = 0;
    this.sum = 0;
  }
}

export class LatencySummary {
  readonly name: string;
  readonly help: string;
  readonly type = 'summary';
  readonly aggregator = 'sum';
  readonly windowMs: number;
  readonly now: () => number;
  private readonly label: string;
  private readonly percentiles: number[];
  private readonly all = new Map<string, Series>();

  constructor(options: LatencySummaryOptions) {
    const known = new Set(['name', 'help', 'label', 'percentiles', 'windowMs', 'now']);
    for (const k of Object.keys(options)) if (!known.has(k)) throw new TypeError(`LatencySummary: unknown option ${k}`);
    this.name = options.name;
    this.help = options.help;
    this.label = options.label ?? 'route';
    this.percentiles = options.percentiles ?? [0.5, 0.9, 0.99];
    for (const p of this.percentiles) if (!(p > 0 && p <= 1)) throw new RangeError(`LatencySummary: percentiles must be in (0, 1], got ${p}`);
    this.windowMs = options.windowMs ?? 30_000;
    if (!(this.windowMs > 0)) throw new RangeError(`LatencySummary: windowMs must be > 0, got ${this.windowMs}`);
    this.now = options.now ?? (() => performance.now());
  }

  /** The series of one label value, made on first use (keep it: the lookup is a Map get). */
  series(value: string): Series {
    let s = this.all.get(value);
    if (!s) this.all.set(value, (s = new Series(this, value)));
    return s;
  }

  /** prom-client's metric read: the quantiles, _sum and _count of each series. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName?: string }[] }> {
    const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = [];
    for (const s of this.all.values()) {
      const q = s.quantiles(this.percentiles);
      this.percentiles.forEach((p, i) => values.push({ labels: { quantile: p, [this.label]: s.value }, value: q[i] }));
      values.push({ metricName: `${this.name}_sum`, labels: { [this.label]: s.value }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.label]: s.value }, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.all.values()) s.reset();
  }
}
