/**
 * examples/server: the HTTP service in a child process on port 0, serving models saved by
 * examples/server/make-models.ts (--quick): /healthz, next-character prediction with streams,
 * classification, stream state moved between streams, /metrics in the Prometheus text format, and
 * SIGTERM with requests in flight (they wait in the batcher's window): every one is answered, then
 * the server exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { repoRoot } from './helpers/child.js';
import { parseMetrics } from '../examples/server/parse-metrics.js';

test('example server: routes, /metrics parses, SIGTERM drains in-flight requests and exits 0', { timeout: 240_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-server-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const made = spawnSync(process.execPath, ['--import', 'tsx', 'examples/server/make-models.ts', '--out', dir, '--quick'], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  assert.equal(made.status, 0, made.stderr);

  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/server/server.ts', '--port', '0', '--window-ms', '400', '--no-eager', '--max-batch', '1000',
    '--model', `lm=${path.join(dir, 'lm')}`, '--model', `classifier=${path.join(dir, 'classifier')}`], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 200_000);
  t.after(() => {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error(`server exited early: ${stderr}`)));
  });
  const post = async (p: string, body: unknown) => {
    const r = await fetch(url + p, { method: 'POST', body: JSON.stringify(body) });
    return { status: r.status, json: await r.json() as Record<string, unknown> };
  };

  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const a = await post('/v1/models/lm/streams/a/next-char', { text: 'In the beginning' });
  assert.equal(a.status, 200, JSON.stringify(a.json));
  const next = a.json.next as { char: string; p: number }[];
  assert.equal(next.length, 5);
  assert.ok(next.every((n, i) => typeof n.char === 'string' && n.p > 0 && n.p <= 1 && (i === 0 || n.p <= next[i - 1].p)));
  // Feeding in two requests continues the stream: the same as one request with the whole text.
  await post('/v1/models/lm/streams/b/next-char', { text: 'In the ' });
  const b = await post('/v1/models/lm/streams/b/next-char', { text: 'beginning' });
  assert.deepEqual(b.json.next, next);
  assert.equal(b.json.steps, 16);
  // The state moved to another stream continues identically.
  const state = await (await fetch(`${url}/v1/models/lm/streams/b/state`)).json() as { state: string };
  assert.equal((await fetch(`${url}/v1/models/lm/streams/c/state`, { method: 'PUT', body: JSON.stringify({ state: state.state }) })).status, 200);
  const c1 = await post('/v1/models/lm/streams/b/next-char', { text: ' God' }), c2 = await post('/v1/models/lm/streams/c/next-char', { text: ' God' });
  assert.deepEqual(c2.json, c1.json);
  const cls = await post('/v1/models/classifier/classify', { text: '135792468' });
  const probs = Object.values(cls.json.probabilities as Record<string, number>);
  assert.equal(probs.length, 2);
  assert.ok(Math.abs(probs[0] + probs[1] - 1) < 1e-5);
  // ?top=k: the k largest outputs of the step, as [index, value], largest first (two streams fed the same).
  for (const id of [3, 0, 7]) {
    const full = await post('/v1/models/lm/streams/full/step', { x: id }), best = await post('/v1/models/lm/streams/best/step?top=3', { x: id });
    assert.equal(best.status, 200, JSON.stringify(best.json));
    const out = full.json.output as number[];
    const want = out.map((v, i) => [i, v]).sort((p, q) => q[1] - p[1] || p[0] - q[0]).slice(0, 3);
    assert.deepEqual(best.json.top, want);
    assert.equal(best.json.steps, full.json.steps);
  }
  assert.equal((await post('/v1/models/lm/streams/a/next-char', { text: '\u0000' })).status, 400);
  assert.equal((await post('/v1/models/nope/predict', {})).status, 404);

  // Requests in flight: they wait in the 400 ms window when SIGTERM comes.
  const inflight = Array.from({ length: 10 }, (_, i) => post(`/v1/models/lm/streams/s${i}/next-char`, { text: 'And God said' }));
  let samples = parseMetrics(await (await fetch(`${url}/metrics`)).text());
  for (let k = 0; k < 200 && (samples.find((s) => s.name === 'rnnkit_queue_depth' && s.labels.model === 'lm')?.value ?? 0) < 10; k++) {
    await new Promise((r) => setTimeout(r, 5));
    samples = parseMetrics(await (await fetch(`${url}/metrics`)).text());
  }
  const names = new Set(samples.map((s) => s.name));
  const answered = (route: string, code: string) => samples.find((s) => s.name === 'rnnkit_requests_total' && s.labels.route === route && s.labels.code === code)?.value;
  assert.equal(answered('next-char', '200'), 5);  // a, b twice, c1, c2 (the 10 in flight are not answered yet)
  assert.equal(answered('step', '200'), 6);
  assert.equal(answered('error', '400'), 1);
  for (const n of ['rnnkit_queue_depth', 'rnnkit_batch_size_bucket', 'rnnkit_batch_size_count', 'rnnkit_request_duration_seconds', 'rnnkit_requests_rejected_total', 'rnnkit_requests_in_flight', 'rnnkit_event_loop_delay_seconds']) {
    assert.ok(names.has(n), `/metrics lacks ${n}`);
  }
  assert.ok(samples.some((s) => s.name === 'rnnkit_request_duration_seconds' && s.labels.quantile === '0.99' && s.labels.route === 'next-char' && s.value > 0));
  const inFlightNow = samples.find((s) => s.name === 'rnnkit_requests_in_flight')!.value;
  // The drain is exercised only if the requests were still waiting (10 queued, + this /metrics request).
  assert.ok(inFlightNow - 1 >= 10, `only ${inFlightNow - 1} requests in flight at SIGTERM: the drain was not exercised`);
  child.kill('SIGTERM');
  const answers = await Promise.all(inflight);
  for (const r of answers) {
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.next, answers[0].json.next);  // the same text: the same answer whatever its batch
  }
  assert.equal(await exited, 0, stderr);
  assert.match(stdout, /SIGTERM: draining[\s\S]*drained; exiting/);
  t.diagnostic(`in flight at SIGTERM: ${inFlightNow - 1} requests (+ the /metrics request); all answered 200; exit 0`);
});
