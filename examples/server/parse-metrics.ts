/**
 * Reads the Prometheus text format (version 0.0.4) back into flat samples — what
 * test/serve-http.test.ts and bench/loadtest.ts read the example server's /metrics with (the server
 * itself writes it with prom-client).
 *
 * Hand-written on purpose, and kept small: the npm parser of this format,
 * parse-prometheus-text-format (1.1.1), loses the labels, _sum and _count of labelled histograms and
 * summaries (rnnkit_batch_size{model}, rnnkit_request_duration_seconds{route} here; upstream issue
 * #13, its fix #8 unmerged since 2019), and no other maintained one was found.
 */

export interface Sample {
  /** The sample's own name: rnnkit_batch_size_bucket, rnnkit_batch_size_sum, ... */
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$/;
const LABEL = /[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)/y;

/** Every sample line (HELP, TYPE, other comments and blank lines skipped); throws on a malformed line. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a metric sample: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      let lm: RegExpExecArray | null;
      while (LABEL.lastIndex < m[2].length && (lm = LABEL.exec(m[2])) !== null) {
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
      if (LABEL.lastIndex !== m[2].length) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    }
    const v = m[3];
    const value = v === '+Inf' || v === 'Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    if (Number.isNaN(value) && v !== 'NaN') throw new Error(`bad value in ${JSON.stringify(line)}`);
    out.push({ name: m[1], labels, value });
  }
  return out;
}
