/**
 * Child-process body for test/errors.test.ts (run with --expose-gc): starts an async native call
 * and then, while it runs, takes away the memory of one of its buffers the way plain JavaScript can
 * — transferring the ArrayBuffer (then collecting the transferred copy) or shrinking a resizable
 * ArrayBuffer. A robust binding must finish (or reject) without touching freed memory; the child
 * prints "settled: ..." and exits 0 in that case. A crash shows up as a signal / non-zero exit.
 *
 * Modes:
 *   native-transfer  native.forwardAsync, y's ArrayBuffer transferred away and collected
 *   native-resize    native.forwardAsync, y backed by a resizable ArrayBuffer shrunk to 0
 *   layer-weights    LSTM.forwardAsync (public API), the live weight_hh_l0 from stateDict()
 *                    transferred away and collected
 */
import { native } from '../../lib/native.js';
import { LSTM, Tensor } from '../../lib/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const mode = process.argv[2];

async function settle(p: Promise<unknown>): Promise<void> {
  await p.then(
    () => console.log('settled: resolved'),
    (e: Error) => console.log(`settled: rejected ${e?.name}: ${e?.message}`),
  );
}

const T = 100, B = 64, I = 32, H = 256;
const cfg = { cell: 'lstm', steps: T, batch: B, inputSize: I, hiddenSize: H } as const;
const base = () => ({
  x: new Float32Array(T * B * I).fill(0.1),
  weightIh: new Float32Array(4 * H * I).fill(0.01),
  weightHh: new Float32Array(4 * H * H).fill(0.01),
});

if (mode === 'native-transfer') {
  const y = new Float32Array(T * B * H); // 19 MiB: its own mapping, unmapped when freed
  const p = native.forwardAsync(cfg, { ...base(), y });
  let moved: unknown = structuredClone(y.buffer, { transfer: [y.buffer] });
  moved = null;
  for (let k = 0; k < 3; k++) gc();
  await settle(p);
} else if (mode === 'native-resize') {
  const bytes = T * B * H * 4;
  const ab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(bytes, { maxByteLength: bytes });
  const p = native.forwardAsync(cfg, { ...base(), y: new Float32Array(ab) });
  ab.resize(0);
  await settle(p);
} else if (mode === 'layer-weights') {
  const layer = new LSTM({ inputSize: 8, units: 256, seed: 1 });
  const x = Tensor.from(new Float32Array(64 * 80 * 8).fill(0.5), [64, 80, 8]);
  const w = layer.stateDict().weight_hh_l0.data; // live parameter, 1 MiB: its own mapping, unmapped when freed
  const p = layer.forwardAsync(x);
  let moved: unknown = structuredClone(w.buffer, { transfer: [w.buffer] });
  moved = null;
  for (let k = 0; k < 3; k++) gc();
  await settle(p);
} else {
  throw new Error(`unknown mode ${mode}`);
}
