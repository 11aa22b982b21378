// Layers around a recurrent layer that run on the same native stack call: Bidirectional (Keras)
// and DropoutWrapper (TF1). Neither copies weights: they run the wrapped layers' own parameters.
import type { NativeCellSpec, NativeCellWeights } from '../native.js';
import { loadParameters, type LoadStateDictOptions } from '../params.js';
import { checkOptions, optionNames, seedOption, show } from '../options.js';
import type { Tensor } from '../tensor.js';
import { RecurrentBase, type DropoutConfig, type MergeMode, type StackDef, type StateStyle } from './base.js';
import { GRU, LSTM, Recurrent, SimpleRNN, type RecurrentOptions } from './recurrent.js';

export interface BidirectionalOptions {
  /** How the forward and backward outputs combine: 'concat' (default), 'sum', 'mul', 'ave', or 'none' (both returned). */
  mergeMode?: MergeMode;
  /**
   * The layer that reads the sequence backwards (Keras backward_layer); default a copy of the
   * forward layer's configuration with fresh weights (seed + 1 when the layer has a seed).
   */
  backwardLayer?: Recurrent;
}

const BIDIRECTIONAL_OPTIONS = optionNames<BidirectionalOptions>({ mergeMode: true, backwardLayer: true });
const MERGE_MODES: readonly MergeMode[] = ['concat', 'sum', 'mul', 'ave', 'none'];

/** A new layer of the same class and options as `layer`, with `overrides`. */
function cloneLayer(layer: Recurrent, overrides: Partial<RecurrentOptions>): Recurrent {
  const options = { ...layer.options, ...overrides } as never;
  if (layer instanceof LSTM) return new LSTM(options);
  if (layer instanceof GRU) return new GRU(options);
  if (layer instanceof SimpleRNN) return new SimpleRNN(options);
  throw new TypeError(`Bidirectional: cannot copy a ${layer.className}; pass options.backwardLayer`);
}

function renameKeys<T>(dict: Record<string, T>, from: string, to: string): Record<string, T> {
  return Object.fromEntries(Object.entries(dict).map(([k, v]) => [k.endsWith(from) ? k.slice(0, -from.length) + to : k, v]));
}

/**
 * Keras's Bidirectional: the wrapped layer reads the sequence forwards, a second one backwards
 * (each sequence's valid part only, with lengths or a mask), and their outputs are merged. Runs as
 * one native call with both directions (concurrently when a step is too small to split). States:
 * [h_fw, c_fw, h_bw, c_bw] (LSTM) or [h_fw, h_bw]; returnSequences/returnState are the layer's.
 * Parameters use PyTorch's names: the forward layer's `weight_ih_l0` …, the backward layer's
 * `weight_ih_l0_reverse` …
 */
export class Bidirectional extends RecurrentBase {
  readonly className = 'Bidirectional';
  readonly forwardLayer: Recurrent;
  readonly backwardLayer: Recurrent;
  readonly merge: MergeMode;
  /** The DropoutWrapper this layer was made from, if any (its dropout applies to both directions). */
  readonly dropoutSource: DropoutWrapper | undefined;
  private readonly dropout: DropoutConfig | undefined;
  private def: StackDef | undefined;

  constructor(layer: Recurrent | DropoutWrapper, options: BidirectionalOptions = {}) {
    const wrapped = layer instanceof DropoutWrapper ? layer : undefined;
    const inner = wrapped ? wrapped.layer : layer;
    if (!(inner instanceof Recurrent)) {
      throw new TypeError(`Bidirectional: layer must be a SimpleRNN, LSTM or GRU (or a DropoutWrapper around one), got ${show(layer)}`);
    }
    checkOptions(options, 'Bidirectional: options', BIDIRECTIONAL_OPTIONS);
    if (inner.numLayers !== 1 || inner.bidirectional) {
      throw new TypeError('Bidirectional: layer must be a single unidirectional layer (for stacks use numLayers and bidirectional: true)');
    }
    if (inner.goBackwards) throw new TypeError('Bidirectional: the forward layer must not have goBackwards set');
    super(inner.inputSize, inner.dtype, inner.returnSequences, inner.returnState, inner.options.seed);
    const merge = options.mergeMode ?? 'concat';
    if (!MERGE_MODES.includes(merge)) throw new TypeError(`Bidirectional: options.mergeMode must be one of ${MERGE_MODES.map((m) => `'${m}'`).join(', ')}, got ${show(merge)}`);
    this.merge = merge;
    this.forwardLayer = inner;
    let back = options.backwardLayer;
    if (back === undefined) {
      const seed = inner.options.seed;
      back = cloneLayer(inner, { goBackwards: true, ...(seed === undefined ? {} : { seed: (seed + 1) % Number.MAX_SAFE_INTEGER }) });
    }
    if (!(back instanceof Recurrent)) throw new TypeError(`Bidirectional: options.backwardLayer must be a SimpleRNN, LSTM or GRU, got ${show(back)}`);
    if (back === inner) throw new TypeError('Bidirectional: options.backwardLayer must be a different layer object from the forward layer');
    const fd = inner.stackDef(), bd = back.stackDef();
    if (back.className !== inner.className || back.numLayers !== 1 || back.bidirectional || back.inputSize !== inner.inputSize ||
        back.dtype !== inner.dtype || bd.units !== fd.units || bd.outputSize !== fd.outputSize) {
      throw new TypeError(
        `Bidirectional: options.backwardLayer must be a single unidirectional ${inner.className} with inputSize ${inner.inputSize}, ` +
          `units ${fd.units}${fd.outputSizeName === 'projSize' ? `, projSize ${fd.outputSize}` : ''} and dtype ${inner.dtype}`,
      );
    }
    if (back.returnSequences !== inner.returnSequences || back.returnState !== inner.returnState) {
      throw new TypeError('Bidirectional: options.backwardLayer must have the returnSequences and returnState of the forward layer');
    }
    this.backwardLayer = back;
    this.dropoutSource = wrapped;
    this.dropout = wrapped ? wrapped.dropoutConfig() : inner.dropoutConfig();
    if (wrapped?.seed !== undefined) this.dropoutRandom = wrapped.newDropoutRandom();
  }

  build(inputSize: number, seed?: number): void {
    if (!this.setInputSize(inputSize, 'Bidirectional.build')) return;
    this.forwardLayer.build(inputSize, seed);
    this.backwardLayer.build(inputSize, seed === undefined ? undefined : (seed + 1) % Number.MAX_SAFE_INTEGER);
    if (seed !== undefined && this.forwardLayer.options.seed === undefined) this.reseedDropout(seed);
  }

  override get stateful(): boolean {
    return this.forwardLayer.stateful;
  }

  /** @internal */
  stackDef(): StackDef {
    if (this.def) return this.def;
    const f = this.forwardLayer.stackDef(), b = this.backwardLayer.stackDef();
    this.def = {
      numLayers: 1,
      numDirections: 2,
      units: f.units,
      outputSize: f.outputSize,
      outputSizeName: f.outputSizeName,
      stateCount: f.stateCount,
      cells: (): NativeCellSpec[] => [f.cells()[0], b.cells()[0]],
      weights: (where): NativeCellWeights[] => [f.weights(where)[0], b.weights(where)[0]],
      versionKey: () => `${f.versionKey()}:${b.versionKey()}`,
      gradients: (grads) => ({ ...f.gradients([grads[0]]), ...renameKeys(b.gradients([grads[1]]), '_l0', '_l0_reverse') }),
    };
    return this.def;
  }

  /** @internal */
  override mergeMode(): MergeMode {
    return this.merge;
  }
  /** @internal */
  stateStyle(): StateStyle {
    return 'pairs';
  }
  /** @internal */
  override dropoutConfig(): DropoutConfig | undefined {
    return this.dropout;
  }

  /** The parameters of both layers, live: `weight_ih_l0` … (forward) and `weight_ih_l0_reverse` … (backward). */
  stateDict(): Record<string, Tensor> {
    return { ...this.forwardLayer.stateDict(), ...renameKeys(this.backwardLayer.stateDict(), '_l0', '_l0_reverse') };
  }

  parameterShapes(): Record<string, number[]> {
    return { ...this.forwardLayer.parameterShapes(), ...renameKeys(this.backwardLayer.parameterShapes(), '_l0', '_l0_reverse') };
  }

  /** Copies parameters in (names as stateDict()); all or nothing. */
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, options);
    this.markWeightsChanged();
  }

  /** Declares that parameters of either layer changed in place. */
  markWeightsChanged(): void {
    this.forwardLayer.markWeightsChanged();
    this.backwardLayer.markWeightsChanged();
  }
}

export interface DropoutWrapperOptions {
  /** Keep probability of each layer-direction's input, in (0, 1] (default 1). */
  inputKeepProb?: number;
  /** Keep probability of each layer-direction's output (the state passed on is not dropped), in (0, 1] (default 1). */
  outputKeepProb?: number;
  /**
   * Keep probability of h_{t−1} before the recurrence, in (0, 1] (default 1): the states the cell
   * made (not h0); an LSTM's c is never dropped (TF1's default state filter).
   */
  stateKeepProb?: number;
  /** One mask per sequence for all steps (Gal & Ghahramani 2016; TF1 variational_recurrent); default false. */
  variationalRecurrent?: boolean;
  /** Seed of the masks (a safe integer); default the layer's seed, else a random one. */
  seed?: number;
}

const DROPOUT_WRAPPER_OPTIONS = optionNames<DropoutWrapperOptions>({
  inputKeepProb: true, outputKeepProb: true, stateKeepProb: true, variationalRecurrent: true, seed: true,
});

function keepProb(v: unknown, what: string): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1) {
    throw new RangeError(`DropoutWrapper: ${what} must be a keep probability in (0, 1], got ${show(v)}`);
  }
  return v;
}

/**
 * TF1's DropoutWrapper around a recurrent layer (any stack): in training, inverted dropout on each
 * layer-direction's input, output and recurrent state, masks drawn from a seeded generator (the
 * same seed gives the same masks whatever the thread count), applied exactly in backpropagation
 * and off in inference. Runs the wrapped layer's own parameters.
 */
export class DropoutWrapper extends RecurrentBase {
  readonly className = 'DropoutWrapper';
  readonly layer: Recurrent;
  readonly inputKeepProb: number;
  readonly outputKeepProb: number;
  readonly stateKeepProb: number;
  readonly variationalRecurrent: boolean;
  readonly seed: number | undefined;

  constructor(layer: Recurrent, options: DropoutWrapperOptions = {}) {
    if (!(layer instanceof Recurrent)) throw new TypeError(`DropoutWrapper: layer must be a SimpleRNN, LSTM or GRU, got ${show(layer)}`);
    checkOptions(options, 'DropoutWrapper: options', DROPOUT_WRAPPER_OPTIONS);
    const seed = seedOption(options.seed, 'DropoutWrapper: options.seed') ?? layer.options.seed;
    super(layer.inputSize, layer.dtype, layer.returnSequences, layer.returnState, seed);
    if (layer.dropout > 0 || layer.recurrentDropout > 0) {
      throw new TypeError('DropoutWrapper: the wrapped layer already has dropout/recurrentDropout; use one or the other');
    }
    this.layer = layer;
    this.seed = seed;
    this.inputKeepProb = keepProb(options.inputKeepProb, 'options.inputKeepProb');
    this.outputKeepProb = keepProb(options.outputKeepProb, 'options.outputKeepProb');
    this.stateKeepProb = keepProb(options.stateKeepProb, 'options.stateKeepProb');
    if (options.variationalRecurrent !== undefined && typeof options.variationalRecurrent !== 'boolean') {
      throw new TypeError(`DropoutWrapper: options.variationalRecurrent must be a boolean, got ${show(options.variationalRecurrent)}`);
    }
    this.variationalRecurrent = options.variationalRecurrent ?? false;
  }

  /** @internal A generator for the masks, seeded like this wrapper's own. */
  newDropoutRandom() {
    return this.dropoutRandom;
  }

  build(inputSize: number, seed?: number): void {
    if (!this.setInputSize(inputSize, 'DropoutWrapper.build')) return;
    this.layer.build(inputSize, seed);
    if (seed !== undefined && this.seed === undefined) this.reseedDropout(seed);
  }

  override get stateful(): boolean {
    return this.layer.stateful;
  }

  /** @internal */
  stackDef(): StackDef {
    return this.layer.stackDef();
  }
  /** @internal */
  override processingOrder(): boolean {
    return this.layer.processingOrder();
  }
  /** @internal */
  stateStyle(): StateStyle {
    return this.layer.stateStyle();
  }
  /** @internal */
  override dropoutConfig(): DropoutConfig | undefined {
    if (this.inputKeepProb === 1 && this.outputKeepProb === 1 && this.stateKeepProb === 1) return undefined;
    return {
      inputKeep: this.inputKeepProb,
      outputKeep: this.outputKeepProb,
      stateKeep: this.stateKeepProb,
      variational: this.variationalRecurrent,
      stateOnInitial: false,
    };
  }

  stateDict(): Record<string, Tensor> {
    return this.layer.stateDict();
  }
  parameterShapes(): Record<string, number[]> {
    return this.layer.parameterShapes();
  }
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    this.layer.loadStateDict(dict, options);
  }
  markWeightsChanged(): void {
    this.layer.markWeightsChanged();
  }
}
