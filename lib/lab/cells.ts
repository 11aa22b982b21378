// The cells the lab compares: tanh RNN, IRNN, the vanilla LSTM (with peepholes) and the eight
// variants of Greff et al. (2015), and the GRU in both of its forms.
import { GRU, LSTM, SimpleRNN, type LSTMVariant, type Recurrent } from '../layers/recurrent.js';

export const CELL_NAMES = ['tanh', 'irnn', 'lstm', 'nig', 'nfg', 'nog', 'niaf', 'noaf', 'np', 'cifg', 'fgr', 'gru', 'gru-rb'] as const;
export type CellName = (typeof CELL_NAMES)[number];

/** How each cell is named in tables and pictures, and what it is. */
export const CELL_LABELS: Record<CellName, { label: string; description: string }> = {
  tanh: { label: 'tanh RNN', description: 'SimpleRNN, tanh, orthogonal recurrent init' },
  irnn: { label: 'IRNN', description: 'SimpleRNN, ReLU, identity recurrent init (Le et al. 2015)' },
  lstm: { label: 'LSTM (V)', description: 'vanilla LSTM with peepholes (Greff et al. V)' },
  nig: { label: 'NIG', description: 'LSTM V without input gate' },
  nfg: { label: 'NFG', description: 'LSTM V without forget gate' },
  nog: { label: 'NOG', description: 'LSTM V without output gate' },
  niaf: { label: 'NIAF', description: 'LSTM V with a linear block-input activation' },
  noaf: { label: 'NOAF', description: 'LSTM V with a linear output activation' },
  np: { label: 'NP', description: 'LSTM V without peepholes (the PyTorch/Keras LSTM)' },
  cifg: { label: 'CIFG', description: 'LSTM V with coupled input and forget gate (f = 1 − i)' },
  fgr: { label: 'FGR', description: 'LSTM V with full gate recurrence' },
  gru: { label: 'GRU', description: 'GRU, reset after the recurrent product (PyTorch, cuDNN)' },
  'gru-rb': { label: 'GRU (reset before)', description: 'GRU, reset before the recurrent product (Cho et al. 2014)' },
};

const VARIANT: Partial<Record<CellName, LSTMVariant>> = {
  lstm: 'V', nig: 'NIG', nfg: 'NFG', nog: 'NOG', niaf: 'NIAF', noaf: 'NOAF', np: 'NP', cifg: 'CIFG', fgr: 'FGR',
};

export interface CellConfig {
  inputSize: number;
  units: number;
  seed: number;
  returnSequences: boolean;
  returnState: boolean;
}

/** A fresh layer of `cell`. */
export function makeCell(cell: CellName, c: CellConfig): Recurrent {
  const common = { inputSize: c.inputSize, units: c.units, seed: c.seed, returnSequences: c.returnSequences, returnState: c.returnState };
  switch (cell) {
    case 'tanh':
      return new SimpleRNN({ ...common, activation: 'tanh' });
    case 'irnn':
      return new SimpleRNN({ ...common, activation: 'relu', recurrentInitializer: 'identity' });
    case 'gru':
      return new GRU({ ...common, resetAfter: true });
    case 'gru-rb':
      return new GRU({ ...common, resetAfter: false });
    default:
      return new LSTM({ ...common, variant: VARIANT[cell]! });
  }
}
