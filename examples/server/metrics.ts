/**
 * The few Prometheus metric kinds the example server exports, written in the text exposition
 * format (version 0.0.4) by hand: counters, gauges, a histogram and a summary whose quantiles come
 * from the last `window` observations.
 */

type Labels = Record<string, string>;

function labelText(labels: Labels, extra?: Labels): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${all[k].replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Metric {
  render(): string[];
}

class Family<T> implements Metric {
  private readonly series = new Map<string, { labels: Labels; value: T }>();
  constructor(readonly name: string, readonly help: string, readonly type: string, private readonly make: () => T, private readonly lines: (name: string, labels: Labels, v: T) => string[]) {}
  get(labels: Labels = {}): T {
    const key = JSON.stringify(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, value: this.make() }));
    return s.value;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const s of this.series.values()) out.push(...this.lines(this.name, s.labels, s.value));
    return out;
  }
}

export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class Gauge {
  value = 0;
  /** When set, read at each scrape. */
  read: (() => number) | undefined;
  set(v: number): void {
    this.value = v;
  }
}

export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
  }
}

export class Summary {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;
  sum = 0;
  count = 0;
  constructor(window = 4096) {
    this.ring = new Float64Array(window);
  }
  observe(v: number): void {
    this.ring[this.next] = v;
    this.next = (this.next + 1) % this.ring.length;
    this.filled = Math.min(this.filled + 1, this.ring.length);
    this.sum += v;
    this.count++;
  }
  /** The q-quantile of the last `window` observations (NaN when none). */
  quantile(q: number): number {
    if (this.filled === 0) return NaN;
    const sorted = this.ring.slice(0, this.filled).sort();
    return sorted[Math.min(this.filled - 1, Math.floor(q * this.filled))];
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  counter(name: string, help: string): Family<Counter> {
    return this.add(new Family(name, help, 'counter', () => new Counter(), (n, l, c) => [`${n}${labelText(l)} ${num(c.value)}`]));
  }
  gauge(name: string, help: string): Family<Gauge> {
    return this.add(new Family(name, help, 'gauge', () => new Gauge(), (n, l, g) => [`${n}${labelText(l)} ${num(g.read ? g.read() : g.value)}`]));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Family<Histogram> {
    return this.add(new Family(name, help, 'histogram', () => new Histogram(buckets), (n, l, h) => [
      ...h.buckets.map((b, i) => `${n}_bucket${labelText(l, { le: num(b) })} ${h.counts[i]}`),
      `${n}_bucket${labelText(l, { le: '+Inf' })} ${h.count}`,
      `${n}_sum${labelText(l)} ${num(h.sum)}`,
      `${n}_count${labelText(l)} ${h.count}`,
    ]));
  }
  summary(name: string, help: string, quantiles: readonly number[] = [0.5, 0.9, 0.99]): Family<Summary> {
    return this.add(new Family(name, help, 'summary', () => new Summary(), (n, l, s) => [
      ...quantiles.map((q) => `${n}${labelText(l, { quantile: String(q) })} ${num(s.quantile(q))}`),
      `${n}_sum${labelText(l)} ${num(s.sum)}`,
      `${n}_count${labelText(l)} ${s.count}`,
    ]));
  }

  private add<T extends Metric>(m: T): T {
    this.metrics.push(m);
    return m;
  }

  /** The text exposition format. */
  render(): string {
    return this.metrics.flatMap((m) => m.render()).join('\n') + '\n';
  }
}

/**
 * Parses the text format back into samples (name, labels, value) — what the tests and the load
 * test read /metrics with. Throws on a line that is not a comment, blank, or `name{labels} value`.
 */
export function parseMetrics(text: string): { name: string; labels: Labels; value: number }[] {
  const out: { name: string; labels: Labels; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a metric sample: ${JSON.stringify(line)}`);
    const labels: Labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let lm: RegExpExecArray | null;
      let seen = 0;
      while ((lm = re.exec(m[3])) !== null) {
        labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        seen = re.lastIndex;
      }
      if (seen !== m[3].length) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(value) && m[4] !== 'NaN') throw new Error(`bad value in ${JSON.stringify(line)}`);
    out.push({ name: m[1], labels, value });
  }
  return out;
}
