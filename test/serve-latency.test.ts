/**
 * examples/server/latency.ts: the per-route latency summary. Its quantiles against the exact
 * quantiles of the sorted observations (HdrHistogram keeps 3 significant digits), the sliding
 * window on a fake clock (the last one to two windows count, older ones drop out), _sum/_count as
 * totals, prom-client's text format through a Registry, reset, and its argument errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';

import { LatencySummary } from '../examples/server/latency.js';
import { parseMetrics } from '../examples/server/parse-metrics.js';

/** The nearest-rank quantile of sorted values (what HdrHistogram's getValueAtPercentile reports). */
const exact = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];

test('latency summary: quantiles within 0.1 % of the exact ones, over 1 µs to 100 s', async () => {
  let now = 0;
  const s = new LatencySummary({ name: 'lat', help: 'h', percentiles: [0.01, 0.5, 0.9, 0.99, 1], now: () => now });
  const series = s.series('a');
  let seed = 9;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const seen: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const v = Math.round(10 ** (rnd() * 8)) / 1e6;  // log-uniform, 1 µs … 100 s, whole µs
    seen.push(v);
    series.observe(v);
    now += 1;
  }
  seen.sort((a, b) => a - b);
  const got = await s.get();
  assert.equal(got.type, 'summary');
  for (const p of [0.01, 0.5, 0.9, 0.99, 1]) {
    const v = got.values.find((x) => x.labels.quantile === p && x.metricName === undefined)!.value;
    const want = exact(seen, p);
    assert.ok(Math.abs(v - want) <= want * 1e-3 + 1e-6, `p${p}: ${v} vs exact ${want}`);
  }
  const sum = got.values.find((x) => x.metricName === 'lat_sum')!.value;
  assert.ok(Math.abs(sum - seen.reduce((a, b) => a + b, 0)) < 1e-6 * sum);
  assert.equal(got.values.find((x) => x.metricName === 'lat_count')!.value, 20_000);
});

test('latency summary: the window holds the last one to two spans; _count stays a total', async () => {
  let now = 0;
  const s = new LatencySummary({ name: 'lat', help: 'h', percentiles: [0.5, 1], windowMs: 1000, now: () => now });
  const a = s.series('a');
  const q = async (p: number) => (await s.get()).values.find((x) => x.labels.quantile === p && x.labels.route === 'a')!.value;
  for (let i = 0; i < 100; i++) a.observe(0.001);  // span 0
  now = 1500;
  for (let i = 0; i < 300; i++) a.observe(0.002);  // span 1: span 0 still counts
  assert.equal(await q(1), 0.002);
  assert.ok(Math.abs(await q(0.5) - 0.002) < 1e-5);
  now = 1999;
  assert.ok(Math.abs((await q(1)) - 0.002) < 1e-5);
  now = 2000;  // span 2 begins: span 0 drops out, span 1 remains
  for (let i = 0; i < 10; i++) a.observe(0.0005);
  assert.ok(Math.abs(await q(0.5) - 0.002) < 1e-5, 'the median of spans 1 and 2');
  now = 3000;  // span 3: spans 2 (0.5 ms) only
  assert.ok(Math.abs(await q(1) - 0.0005) < 1e-6);
  now = 5000;  // two spans on: nothing in the window
  assert.equal(await q(1), 0);
  assert.equal((await s.get()).values.find((x) => x.metricName === 'lat_count')!.value, 410);
  s.reset();
  assert.equal((await s.get()).values.find((x) => x.metricName === 'lat_count')!.value, 0);
  assert.equal(await q(0.5), 0);
});

test('latency summary: prom-client text format through a Registry, per label value', async () => {
  const registry = new Registry();
  const s = new LatencySummary({ name: 'http_latency_seconds', help: 'Request latency.', label: 'route' });
  registry.registerMetric(s as never);
  s.series('step').observe(0.25);
  s.series('predict').observe(0.5);
  s.series('predict').observe(1.5);
  const text = await registry.metrics();
  assert.match(text, /# TYPE http_latency_seconds summary/);
  const m = parseMetrics(text);
  const get = (name: string, labels: Record<string, string>) => m.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;
  const near = (v: number | undefined, want: number) => assert.ok(v !== undefined && Math.abs(v - want) <= want * 1e-3, `${v} vs ${want}`);
  near(get('http_latency_seconds', { route: 'step', quantile: '0.99' }), 0.25);
  near(get('http_latency_seconds', { route: 'predict', quantile: '0.99' }), 1.5);
  assert.equal(get('http_latency_seconds_count', { route: 'predict' }), 2);
  assert.equal(get('http_latency_seconds_sum', { route: 'predict' }), 2);
});

test('latency summary: argument errors name the argument', () => {
  assert.throws(() => new LatencySummary({ name: 'x', help: 'h', window: 5 } as never), { name: 'TypeError', message: /unknown option window/ });
  assert.throws(() => new LatencySummary({ name: 'x', help: 'h', percentiles: [50] }), { name: 'RangeError', message: /percentiles/ });
  assert.throws(() => new LatencySummary({ name: 'x', help: 'h', windowMs: 0 }), { name: 'RangeError', message: /windowMs/ });
  const s = new LatencySummary({ name: 'x', help: 'h' });
  assert.throws(() => s.series('a').observe(Number.NaN), { name: 'TypeError', message: /latency/ });
  assert.throws(() => s.series('a').observe(-1), { name: 'TypeError', message: /latency/ });
});
