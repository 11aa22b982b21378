/**
 * Hostile calls to the raw native stack surface (prepareStack, stackForward(Async),
 * stackBackward(Async), releaseStack, releaseRun, stackInfo): each must throw (or reject with) a
 * TypeError or RangeError — an Error for a released handle — and never crash. Run in a child
 * process by test/stack-native.test.ts; prints `ok:` and the number of calls.
 */
import { native, type NativeCellSpec } from '../../lib/native.js';

let calls = 0;
function expectError(what: string, fn: () => unknown, plain?: RegExp): void {
  calls++;
  try {
    fn();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) return;
    if (plain && e instanceof Error && plain.test(e.message)) return;
    throw new Error(`${what}: expected a TypeError or RangeError, got ${String(e)}`);
  }
  throw new Error(`${what}: expected an error, got none`);
}
async function expectReject(what: string, fn: () => Promise<unknown>, plain?: RegExp): Promise<void> {
  calls++;
  let p: Promise<unknown>;
  try {
    p = fn();
  } catch (e) {
    throw new Error(`${what}: the async form threw synchronously: ${String(e)}`);
  }
  try {
    await p;
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) return;
    if (plain && e instanceof Error && plain.test(e.message)) return;
    throw new Error(`${what}: expected a TypeError or RangeError, got ${String(e)}`);
  }
  throw new Error(`${what}: expected a rejection, got none`);
}

const I = 3, H = 2, T = 4, B = 2;
const cell: NativeCellSpec = { cell: 'lstm', inputSize: I, hiddenSize: H };
const w = (i: number) => ({ weightIh: new Float32Array(8 * i), weightHh: new Float32Array(8 * H), biasIh: new Float32Array(8), biasHh: new Float32Array(8) });
const good = () => native.prepareStack({ numLayers: 2, numDirections: 2, cells: [cell, cell, { ...cell, inputSize: 4 }, { ...cell, inputSize: 4 }] }, [w(I), w(I), w(4), w(4)]);

// prepareStack
expectError('no arguments', () => (native.prepareStack as (...a: unknown[]) => unknown)());
expectError('spec null', () => native.prepareStack(null as never, []));
expectError('numLayers 0', () => native.prepareStack({ numLayers: 0, numDirections: 1, cells: [] }, []));
expectError('numDirections 3', () => native.prepareStack({ numLayers: 1, numDirections: 3 as never, cells: [cell, cell, cell] }, [w(I), w(I), w(I)]));
expectError('cells too few', () => native.prepareStack({ numLayers: 2, numDirections: 1, cells: [cell] }, [w(I)]));
expectError('weights too few', () => native.prepareStack({ numLayers: 1, numDirections: 1, cells: [cell] }, []));
expectError('layer 1 input size wrong', () => native.prepareStack({ numLayers: 2, numDirections: 1, cells: [cell, cell] }, [w(I), w(I)]));
expectError('mixed cells', () => native.prepareStack({ numLayers: 1, numDirections: 2, cells: [cell, { ...cell, cell: 'gru' }] }, [w(I), w(I)]));
expectError('short weight', () => native.prepareStack({ numLayers: 1, numDirections: 1, cells: [cell] }, [{ ...w(I), weightIh: new Float32Array(3) }]));
expectError('mixed dtypes', () => native.prepareStack({ numLayers: 1, numDirections: 2, cells: [cell, cell] }, [w(I), { weightIh: new Float64Array(8 * I), weightHh: new Float64Array(8 * H) }]));
const detached = new Float32Array(8 * I);
structuredClone(detached.buffer, { transfer: [detached.buffer] });
expectError('detached weight', () => native.prepareStack({ numLayers: 1, numDirections: 1, cells: [cell] }, [{ ...w(I), weightIh: detached }]));
expectError('weights getter detaches an earlier buffer', () => {
  const a = w(I);
  const obj = { ...a, get weightHh() { structuredClone(a.weightIh.buffer, { transfer: [a.weightIh.buffer] }); return a.weightHh; } };
  return native.prepareStack({ numLayers: 1, numDirections: 1, cells: [cell] }, [obj as never]);
});
expectError('huge hidden size', () => native.prepareStack({ numLayers: 1, numDirections: 1, cells: [{ ...cell, hiddenSize: 2 ** 30 }] }, [w(I)]));

// stackForward
const stack = good();
const x = new Float32Array(T * B * I);
expectError('stack forged', () => native.stackForward({} as never, { steps: T, batch: B, x }));
expectError('stack is a run-like object', () => native.stackForward(Object.create(null), { steps: T, batch: B, x }));
expectError('call null', () => native.stackForward(stack, null as never));
expectError('x short', () => native.stackForward(stack, { steps: T, batch: B, x: new Float32Array(3) }));
expectError('x float64', () => native.stackForward(stack, { steps: T, batch: B, x: new Float64Array(T * B * I) }));
expectError('steps 0', () => native.stackForward(stack, { steps: 0, batch: B, x }));
expectError('batch NaN', () => native.stackForward(stack, { steps: T, batch: NaN, x }));
expectError('h0 wrong size', () => native.stackForward(stack, { steps: T, batch: B, x, h0: new Float32Array(3) }));
expectError('lengths float', () => native.stackForward(stack, { steps: T, batch: B, x, lengths: new Float32Array(B) as never }));
expectError('lengths 0', () => native.stackForward(stack, { steps: T, batch: B, x, lengths: new Int32Array([0, 1]) }));
expectError('lengths beyond', () => native.stackForward(stack, { steps: T, batch: B, x, lengths: new Int32Array([T + 1, 1]) }));
expectError('lengths negative', () => native.stackForward(stack, { steps: T, batch: B, x, lengths: new Int32Array([-5, 1]) }));
expectError('lengths short', () => native.stackForward(stack, { steps: T, batch: B, x, lengths: new Int32Array([1]) }));
expectError('mask value 2', () => native.stackForward(stack, { steps: T, batch: B, x, mask: new Uint8Array(B * T).fill(2) }));
expectError('mask empty row', () => native.stackForward(stack, { steps: T, batch: B, x, mask: new Uint8Array(B * T) }));
expectError('lengths and mask', () => native.stackForward(stack, { steps: T, batch: B, x, lengths: new Int32Array([1, 1]), mask: new Uint8Array(B * T).fill(1) }));
expectError('merge unknown', () => native.stackForward(stack, { steps: T, batch: B, x, merge: 'max' as never }));
expectError('processingOrder on two directions', () => native.stackForward(stack, { steps: T, batch: B, x, processingOrder: true }));
expectError('keep 0', () => native.stackForward(stack, { steps: T, batch: B, x, training: true, dropout: { seed: 1, inputKeep: 0 } }));
expectError('keep NaN', () => native.stackForward(stack, { steps: T, batch: B, x, training: true, dropout: { seed: 1, stateKeep: NaN } }));
expectError('seed negative', () => native.stackForward(stack, { steps: T, batch: B, x, training: true, dropout: { seed: -1 } }));
expectError('training too big', () => native.stackForward(stack, { steps: 2 ** 30, batch: 2 ** 10, x, training: true }));
expectError('x shared', () => native.stackForward(stack, { steps: T, batch: B, x: new Float32Array(new SharedArrayBuffer(T * B * I * 4)) }));
// call.y: the caller's output array
const Y = T * B * 2 * H;  // [steps, batch, 2 directions · H]
expectError('y short', () => native.stackForward(stack, { steps: T, batch: B, x, y: new Float32Array(Y - 1) }));
expectError('y float64', () => native.stackForward(stack, { steps: T, batch: B, x, y: new Float64Array(Y) }));
expectError('y shared', () => native.stackForward(stack, { steps: T, batch: B, x, y: new Float32Array(new SharedArrayBuffer(Y * 4)) }));
expectError('y not a typed array', () => native.stackForward(stack, { steps: T, batch: B, x, y: [1, 2] as never }));
expectError('y with outputs states', () => native.stackForward(stack, { steps: T, batch: B, x, y: new Float32Array(Y), outputs: 'states' }));
{
  const both = new Float32Array(Y + T * B * I);
  expectError('y overlaps x', () => native.stackForward(stack, { steps: T, batch: B, x: both.subarray(Y - 1, Y - 1 + T * B * I), y: both.subarray(0, Y) }));
  const hy = new Float32Array(Y + 4 * B * H);
  expectError('y overlaps h0', () => native.stackForward(stack, { steps: T, batch: B, x, h0: hy.subarray(Y - 2, Y - 2 + 4 * B * H), y: hy.subarray(0, Y) }));
}
expectError('y getter detaches x', () => {
  const xs = new Float32Array(T * B * I);
  const c = { steps: T, batch: B, x: xs, get y() { structuredClone(xs.buffer, { transfer: [xs.buffer] }); return new Float32Array(Y); } };
  return native.stackForward(stack, c as never);
});
{
  const y = new Float32Array(Y).fill(NaN);
  const r = native.stackForward(stack, { steps: T, batch: B, x, y });
  if (r.y !== y || y.some(Number.isNaN)) throw new Error('call.y: the output was not written in place');
  calls++;
}

// stackBackward
const fwd = native.stackForward(stack, { steps: T, batch: B, x, training: true });
const run = fwd.run!;
expectError('run forged', () => native.stackBackward({} as never, {}));
expectError('run is a stack', () => native.stackBackward(stack as never, {}));
expectError('dy short', () => native.stackBackward(run, { dy: new Float32Array(3) }));
expectError('dhN float64', () => native.stackBackward(run, { dhN: new Float64Array(4 * B * H) }));
expectError('inputGradient not boolean', () => native.stackBackward(run, { inputGradient: 1 as never }));
native.stackBackward(run, {});
native.stackBackward(run, { dy: new Float32Array(T * B * 2 * H), inputGradient: false });

// async forms reject, never throw, and survive buffers detached right after the call
await expectReject('async x short', () => native.stackForwardAsync(stack, { steps: T, batch: B, x: new Float32Array(1) }));
await expectReject('async run forged', () => native.stackBackwardAsync({} as never, {}));
{
  const xa = new Float32Array(T * B * I).fill(0.5);
  const p = native.stackForwardAsync(stack, { steps: T, batch: B, x: xa, training: true });
  structuredClone(xa.buffer, { transfer: [xa.buffer] });
  const r = await p;
  const dy = new Float32Array(T * B * 2 * H).fill(1);
  const q = native.stackBackwardAsync(r.run!, { dy });
  structuredClone(dy.buffer, { transfer: [dy.buffer] });
  await q;
  calls += 2;
}
{
  // An async call's output array is written on completion; transferred meanwhile, the call rejects.
  const y = new Float32Array(T * B * 2 * H);
  const ok = await native.stackForwardAsync(stack, { steps: T, batch: B, x, y });
  if (ok.y !== y) throw new Error('async call.y: not returned as y');
  const y2 = new Float32Array(T * B * 2 * H);
  await expectReject('async y transferred during the call', () => {
    const p = native.stackForwardAsync(stack, { steps: T, batch: B, x, y: y2 });
    structuredClone(y2.buffer, { transfer: [y2.buffer] });
    return p;
  });
  calls++;
}

// released handles
native.releaseRun(run);
expectError('backward after releaseRun', () => native.stackBackward(run, {}), /released/);
native.releaseRun(run);
const s2 = good();
const inflight = native.stackForwardAsync(s2, { steps: T, batch: B, x: new Float32Array(T * B * I) });
native.releaseStack(s2); // the call in flight keeps what it uses
await inflight;
calls++;
expectError('forward after releaseStack', () => native.stackForward(s2, { steps: T, batch: B, x }));
expectError('stackInfo after releaseStack', () => native.stackInfo(s2));
expectError('releaseStack forged', () => native.releaseStack({} as never));
expectError('releaseRun forged', () => native.releaseRun(stack as never));
console.log(`ok: ${calls} hostile or edge calls to the native stack surface, no crash`);
