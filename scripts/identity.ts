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
/** A built layer's prepared native stack and its shape: LD layer-directions, P output and H state widths. */
function prepared(make: (o: any) => any, opts: object, inputSize: number) {
  const layer = make({ ...opts, inputSize, returnSequences: true });
  layer.build(inputSize);
  const def = layer.stackDef();
  return { stack: layer.preparedStack('x'), def, LD: def.numLayers * def.numDirections, P: def.outputSize, H: def.units };
}
/** Sets the variable-length input (lengths or mask; 'len' = lengths[b] = T - (b·k mod T)) and random h0/c0. */
function varyAndStart(call: any, v: string, k: number, B: number, T: number, p: { LD: number; P: number; H: number; def: any }) {
  if (v === 'len') call.lengths = Int32Array.from({ length: B }, (_, b) => T - ((b * k) % T));
  if (v === 'mask') call.mask = Uint8Array.from({ length: B * T }, (_, j) => j % T === 0 || (j * 7) % 3 !== 1 ? 1 : 0);
  call.h0 = Float32Array.from({ length: p.LD * B * p.P }, rnd);
  if (p.def.stateCount === 2) call.c0 = Float32Array.from({ length: p.LD * B * p.H }, rnd);
}
/** Feeds the named typed arrays of r (those present) to the hash. */
function hashArrays(hash: ReturnType<typeof createHash>, r: any, keys: string[]) {
  for (const k of keys) if (r[k]) hash.update(new Uint8Array(r[k].buffer, r[k].byteOffset, r[k].byteLength));
}
for (const [name, make] of kinds) for (const dtype of ['float32', 'float64']) for (const numLayers of [1, 2, 3]) for (const bidirectional of [false, true]) for (const goBackwards of [false, true]) {
  const { stack, def, LD, P, H } = prepared(make, { units: 5, numLayers, bidirectional, dtype, seed: 7 }, 4);
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
  hashArrays(h, r, ['y', 'hN', 'cN']);
  count++;
}
console.log(count, h.digest('hex'));
// Larger: several time chunks.
{
  const h2 = createHash('sha256'); let n2 = 0;
  for (const [name, make] of kinds) for (const numLayers of [1, 2]) for (const bidirectional of [false, true]) {
    const p = prepared(make, { units: 64, numLayers, bidirectional, seed: 3 }, 16);
    for (const B of [1, 5, 40]) for (const T of [1, 97, 400]) for (const bf of [false, true]) for (const v of ['none', 'len', 'mask']) for (const outputs of ['sequence', 'states']) {
      const call: any = { steps: T, batch: B, x: Float32Array.from({ length: T * B * 16 }, rnd), batchFirst: bf, outputs };
      varyAndStart(call, v, 37, B, T, p);
      hashArrays(h2, native.stackForward(p.stack as never, call), ['y', 'hN', 'cN']);
      n2++;
    }
  }
  console.log('large', n2, h2.digest('hex'));
}
// Training forward (with and without dropout) and backward.
{
  const h3 = createHash('sha256'); let n3 = 0;
  for (const [name, make] of kinds) for (const numLayers of [1, 2]) for (const bidirectional of [false, true]) {
    const p = prepared(make, { units: 6, numLayers, bidirectional, seed: 5 }, 5);
    for (const B of [1, 4]) for (const T of [1, 6]) for (const bf of [false, true]) for (const v of ['none', 'len', 'mask']) for (const drop of [false, true]) {
      const call: any = { steps: T, batch: B, x: Float32Array.from({ length: T * B * 5 }, rnd), batchFirst: bf, training: true };
      varyAndStart(call, v, 3, B, T, p);
      if (drop) call.dropout = { seed: 11, inputKeep: 0.8, stateKeep: 0.7, outputKeep: 0.9, betweenKeep: 0.85 };
      const r: any = native.stackForward(p.stack as never, call);
      hashArrays(h3, r, ['y', 'hN', 'cN']);
      const width = r.y.length / (T * B);
      const g: any = (native as any).stackBackward(r.run, { dy: Float32Array.from({ length: T * B * width }, rnd), dhN: Float32Array.from({ length: p.LD * B * p.P }, rnd) });
      hashArrays(h3, g, ['dx', 'dh0', 'dc0']);
      for (const c of g.grads) hashArrays(h3, c, Object.keys(c).sort());
      n3++;
    }
  }
  console.log('train', n3, h3.digest('hex'));
}
