// Bit-identity across builds: hashes every output of the native stack entries (stackForward for
// inference and training, with and without dropout, and stackBackward) over ~53 000 calls — every
// cell kind, LSTMP, peepholes, full gate recurrence, 1–3 layers, both directions and merges,
// lengths, pre-padding, masks, batch-first, h0/c0, processing order, both dtypes, several time
// chunks. A change that should not alter any result (a copy removed, a loop restructured) must
// print the same three hashes with the build before it and after it:
//
//   cp build/Release/rnnkit.node /tmp/before.node     # before the change
//   RNNKIT_ADDON=/tmp/before.node node --import tsx scripts/identity.ts
//   RNNKIT_ADDON=build/Release/rnnkit.node node --import tsx scripts/identity.ts
import { createHash } from 'node:crypto';
import { LSTM, GRU, SimpleRNN } from '../lib/index.js';
import { native } from '../lib/native.js';
const h = createHash('sha256');
let count = 0;
const kinds: [string, (o: any) => any][] = [
  ['lstm', (o) => new LSTM(o)], ['lstmp', (o) => new LSTM({ ...o, projSize: 3 })], ['peep', (o) => new LSTM({ ...o, peepholes: true })],
  ['fgr', (o) => new LSTM({ ...o, fullGateRecurrence: true })], ['gru', (o) => new GRU(o)], ['grulbr', (o) => new GRU({ ...o, resetAfter: false })], ['rnn', (o) => new SimpleRNN(o)],
];
let seed = 1;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
for (const [name, make] of kinds) for (const dtype of ['float32', 'float64']) for (const numLayers of [1, 2, 3]) for (const bidirectional of [false, true]) for (const goBackwards of [false, true]) {
  const layer = make({ units: 5, inputSize: 4, numLayers, bidirectional, dtype, seed: 7, returnSequences: true });
  layer.build(4);
  const stack = layer.preparedStack('x');
  const def = layer.stackDef();
  const LD = def.numLayers * def.numDirections, P = def.outputSize, H = def.units;
  for (const B of [1, 3, 9]) for (const T of [1, 2, 7]) for (const bf of [false, true]) for (const v of ['none', 'len', 'pre', 'mask']) for (const st of [false, true]) for (const outputs of ['sequence', 'states']) {
    const A = (n: number): Float32Array | Float64Array => (dtype === 'float64' ? Float64Array.from({ length: n }, rnd) : Float32Array.from({ length: n }, rnd));
    const call: any = { steps: T, batch: B, x: A(T * B * 4), batchFirst: bf, outputs };
    if (goBackwards && !bidirectional) call.processingOrder = true; else if (goBackwards) continue;
    if (v === 'len' || v === 'pre') { call.lengths = Int32Array.from({ length: B }, (_, b) => (b * 5) % (T + 1)); if (v === 'pre') call.prePadding = true; }
    if (v === 'mask') call.mask = Uint8Array.from({ length: B * T }, (_, k) => (k * 7) % 3 ? 1 : 0);
    if (st) { call.h0 = A(LD * B * P); if (def.stateCount === 2) call.c0 = A(LD * B * H); }
    if (bidirectional) for (const merge of ['concat', 'sum']) { call.merge = merge; run(stack, call); }
    else run(stack, call);
  }
}
function run(stack: any, call: any) {
  let r: any;
  try { r = native.stackForward(stack, call); } catch (e) { h.update('ERR' + (e as Error).message); count++; return; }
  for (const k of ['y', 'hN', 'cN']) if (r[k]) h.update(new Uint8Array(r[k].buffer, r[k].byteOffset, r[k].byteLength));
  count++;
}
console.log(count, h.digest('hex'));
// Larger: several time chunks.
{
  const h2 = createHash('sha256'); let n2 = 0;
  for (const [name, make] of kinds) for (const numLayers of [1, 2]) for (const bidirectional of [false, true]) {
    const layer = make({ units: 64, inputSize: 16, numLayers, bidirectional, seed: 3, returnSequences: true });
    layer.build(16);
    const stack = layer.preparedStack('x');
    const def = layer.stackDef();
    const LD = def.numLayers * def.numDirections, P = def.outputSize, H = def.units;
    for (const B of [1, 5, 40]) for (const T of [1, 97, 400]) for (const bf of [false, true]) for (const v of ['none', 'len', 'mask']) for (const outputs of ['sequence', 'states']) {
      const call: any = { steps: T, batch: B, x: Float32Array.from({ length: T * B * 16 }, rnd), batchFirst: bf, outputs };
      if (v === 'len') call.lengths = Int32Array.from({ length: B }, (_, b) => T - ((b * 37) % T));
      if (v === 'mask') call.mask = Uint8Array.from({ length: B * T }, (_, k) => k % T === 0 || (k * 7) % 3 !== 1 ? 1 : 0);
      call.h0 = Float32Array.from({ length: LD * B * P }, rnd); if (def.stateCount === 2) call.c0 = Float32Array.from({ length: LD * B * H }, rnd);
      const r: any = native.stackForward(stack as never, call);
      for (const k of ['y', 'hN', 'cN']) if (r[k]) h2.update(new Uint8Array(r[k].buffer, r[k].byteOffset, r[k].byteLength));
      n2++;
    }
  }
  console.log('large', n2, h2.digest('hex'));
}
// Training forward (with and without dropout) and backward.
{
  const h3 = createHash('sha256'); let n3 = 0;
  for (const [name, make] of kinds) for (const numLayers of [1, 2]) for (const bidirectional of [false, true]) {
    const layer = make({ units: 6, inputSize: 5, numLayers, bidirectional, seed: 5, returnSequences: true });
    layer.build(5);
    const stack = layer.preparedStack('x');
    const def = layer.stackDef();
    const LD = def.numLayers * def.numDirections, P = def.outputSize, H = def.units;
    for (const B of [1, 4]) for (const T of [1, 6]) for (const bf of [false, true]) for (const v of ['none', 'len', 'mask']) for (const drop of [false, true]) {
      const call: any = { steps: T, batch: B, x: Float32Array.from({ length: T * B * 5 }, rnd), batchFirst: bf, training: true };
      if (v === 'len') call.lengths = Int32Array.from({ length: B }, (_, b) => T - ((b * 3) % T));
      if (v === 'mask') call.mask = Uint8Array.from({ length: B * T }, (_, k) => k % T === 0 || (k * 7) % 3 !== 1 ? 1 : 0);
      if (drop) call.dropout = { seed: 11, inputKeep: 0.8, stateKeep: 0.7, outputKeep: 0.9, betweenKeep: 0.85 };
      call.h0 = Float32Array.from({ length: LD * B * P }, rnd); if (def.stateCount === 2) call.c0 = Float32Array.from({ length: LD * B * H }, rnd);
      const r: any = native.stackForward(stack as never, call);
      for (const k of ['y', 'hN', 'cN']) if (r[k]) h3.update(new Uint8Array(r[k].buffer, r[k].byteOffset, r[k].byteLength));
      const width = r.y.length / (T * B);
      const g: any = (native as any).stackBackward(r.run, { dy: Float32Array.from({ length: T * B * width }, rnd), dhN: Float32Array.from({ length: LD * B * P }, rnd) });
      for (const k of ['dx', 'dh0', 'dc0']) if (g[k]) h3.update(new Uint8Array(g[k].buffer, g[k].byteOffset, g[k].byteLength));
      for (const c of g.grads) for (const k of Object.keys(c).sort()) h3.update(new Uint8Array(c[k].buffer, c[k].byteOffset, c[k].byteLength));
      n3++;
    }
  }
  console.log('train', n3, h3.digest('hex'));
}
