/**
 * Child body of test/outputs.test.ts: where a call's outputs live. Small outputs (under 64 KiB)
 * share one Node buffer, each from a 64-byte boundary, without overlapping; large ones have a
 * buffer of their own; each holds its own values. Prints `ok: …` or throws.
 */
import assert from 'node:assert/strict';

import { GRU, LSTM, Tensor } from '../../lib/index.js';
import type { TensorData } from '../../lib/index.js';

function sin(n: number, scale = 1): Float32Array {
  return new Float32Array(n).map((_, k) => Math.sin(0.37 * k + 1) * scale);
}

/** Asserts the arrays' byte ranges are disjoint; returns how many distinct buffers they use. */
function checkDisjoint(arrays: TensorData[], what: string): number {
  const byBuffer = new Map<ArrayBufferLike, TensorData[]>();
  for (const a of arrays) byBuffer.set(a.buffer, [...(byBuffer.get(a.buffer) ?? []), a]);
  for (const group of byBuffer.values()) {
    const sorted = [...group].sort((p, q) => p.byteOffset - q.byteOffset);
    for (let i = 1; i < sorted.length; i++)
      assert.ok(sorted[i - 1].byteOffset + sorted[i - 1].byteLength <= sorted[i].byteOffset, `${what}: two outputs overlap in one buffer`);
    // (the buffer's memory starts 8-aligned: the first output is 64-byte aligned in memory, the
    // others follow at multiples of 64 bytes from it)
    for (const a of sorted) assert.equal((a.byteOffset - sorted[0].byteOffset) % 64, 0, `${what}: shared outputs are not 64 bytes apart`);
  }
  return byBuffer.size;
}

const report: string[] = [];

// Small LSTM call: y, h and c in one buffer; h is y's last step.
{
  const B = 3, T = 4, I = 5, H = 7;
  const lstm = new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, seed: 3 });
  const r = lstm.forward(Tensor.from(sin(B * T * I), [B, T, I]));
  const [h, c] = r.states;
  const y = r.output.data;
  assert.equal(checkDisjoint([y, h.data, c.data], 'small LSTM forward'), 1, 'small LSTM forward: y, h and c should share one buffer');
  for (let b = 0; b < B; b++)
    for (let j = 0; j < H; j++) assert.equal(h.data[b * H + j], y[(b * T + T - 1) * H + j], 'h_n is the last step of y');
  const before = Float32Array.from(y);
  h.data.fill(123);
  c.data.fill(-5);
  assert.deepEqual(Float32Array.from(y), before, 'writing h and c must not change y');
  report.push('small forward: 1 buffer');
}

// Large y (6.4 MB) alone; the states still share theirs.
{
  const B = 32, T = 200, I = 16, H = 256;  // y 6.5 MB; h and c 32 KiB each
  const lstm = new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, seed: 4 });
  const r = lstm.forward(Tensor.from(sin(B * T * I), [B, T, I]));
  const [h, c] = r.states;
  const y = r.output.data;
  assert.notEqual(y.buffer, h.data.buffer, 'a large output has a buffer of its own');
  assert.equal(y.byteLength, y.buffer.byteLength, 'a large output is its whole buffer');
  assert.equal(h.data.buffer, c.data.buffer, 'the small states share one buffer');
  checkDisjoint([y, h.data, c.data], 'large LSTM forward');
  for (let b = 0; b < B; b += 9)
    for (let j = 0; j < H; j += 13) assert.equal(h.data[b * H + j], y[(b * T + T - 1) * H + j], 'h_n is the last step of y');
  report.push('large forward: y alone');
}

// Training: the gradients of a small GRU share a buffer, disjoint, and each is its own parameter's.
{
  const B = 2, T = 3, I = 4, H = 5;
  const gru = new GRU({ inputSize: I, units: H, returnSequences: true, seed: 5 });
  const x = Tensor.from(sin(B * T * I), [B, T, I]);
  const dy = Tensor.from(sin(B * T * H, 0.1), [B, T, H]);
  const { run } = gru.forward(x, { training: true });
  const g = gru.backward(run!, dy);
  const arrays = [g.input.data, ...g.initialState.map((s) => s.data), ...Object.values(g.params).map((p) => p.data)];
  const buffers = checkDisjoint(arrays, 'GRU backward');
  assert.equal(buffers, 1, `GRU backward: ${arrays.length} small gradients should share one buffer, used ${buffers}`);
  // Each gradient is its parameter's: the same call again gives the same values in every array.
  const { run: run2 } = gru.forward(x, { training: true });
  const g2 = gru.backward(run2!, dy);
  for (const [name, p] of Object.entries(g.params)) assert.deepEqual(p.data, g2.params[name].data, `d${name} repeats`);
  run!.release();
  run2!.release();
  report.push(`backward: ${arrays.length} gradients in 1 buffer`);
}

console.log(`ok: ${report.join('; ')}`);
