/**
 * The child side of test/isa.test.ts: prints `ok: ` and JSON with cpuInfo() and the outputs and
 * gradients of an LSTM (peepholes, projection), a GRU and a SimpleRNN on fixed data, under whatever
 * RNNKIT_ISA the parent set.
 */
import { cpuInfo, GRU, LSTM, SimpleRNN, Tensor, type Recurrent } from '../../lib/index.js';

const B = 3, T = 7, I = 5, H = 33;  // H not a multiple of 16 or 8: every kernel's tail runs
const x = Tensor.from(Float32Array.from({ length: B * T * I }, (_, k) => Math.sin(k * 0.37) * 1.5), [B, T, I]);
const layers: Record<string, Recurrent> = {
  lstm: new LSTM({ inputSize: I, units: H, returnSequences: true, seed: 1 }),
  lstmPeepholeProj: new LSTM({ inputSize: I, units: H, returnSequences: true, seed: 2, variant: 'V', projSize: 9 }),
  gru: new GRU({ inputSize: I, units: H, returnSequences: true, seed: 3 }),
  gruResetBefore: new GRU({ inputSize: I, units: H, returnSequences: true, seed: 4, resetAfter: false }),
  rnn: new SimpleRNN({ inputSize: I, units: H, returnSequences: true, seed: 5 }),
};
const out: Record<string, { y: number[]; dx: number[]; dW: number[] }> = {};
for (const [name, l] of Object.entries(layers)) {
  const f = l.forward(x, { training: true });
  const dy = Tensor.from(Float32Array.from({ length: f.output.size }, (_, k) => Math.cos(k * 0.11)), f.output.shape);
  const g = l.backward(f.run!, dy);
  out[name] = { y: [...f.output.data], dx: [...g.input.data], dW: [...g.params.weight_hh_l0.data] };
}
console.log(`ok: ${JSON.stringify({ info: cpuInfo(), out })}`);
