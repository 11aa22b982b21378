// Loading a state dict into a layer's live parameters, shared by every layer.
import { checkOptions, flag, optionNames } from './options.js';
import { bufferProblem, checkTensor, describeBufferProblem, elementCount, formatShape, Tensor } from './tensor.js';

/** Options of loadStateDict. */
export interface LoadStateDictOptions {
  /** Require exactly the layer's parameter names (default true); false loads the ones present. */
  strict?: boolean;
}

const LOAD_OPTIONS = optionNames<LoadStateDictOptions>({ strict: true });

/**
 * Copies dict's tensors into `live` (all or nothing), checking names (when strict), shapes and that
 * every value is finite in the live tensor's dtype. A tensor of the other dtype is converted (float64
 * into float32 rounds; a value beyond float32's range, which would become ±Infinity, is refused).
 */
export function loadParameters(
  className: string,
  live: Record<string, Tensor>,
  shapes: Record<string, number[]>,
  dict: Record<string, Tensor>,
  options: LoadStateDictOptions | undefined,
): void {
  if (options !== undefined) checkOptions(options, 'loadStateDict: options', LOAD_OPTIONS);
  const strict = flag(options?.strict, 'loadStateDict: options.strict', true);
  if (typeof dict !== 'object' || dict === null) throw new TypeError('loadStateDict: expected an object of Tensors');
  if (strict) {
    const unknown = Object.keys(dict).filter((k) => !(k in shapes));
    if (unknown.length) {
      throw new RangeError(`loadStateDict: unexpected parameter(s) ${unknown.join(', ')}; ${className} has ${Object.keys(shapes).join(', ')}`);
    }
  }
  const staged: [Tensor, Tensor][] = [];
  for (const [name, shape] of Object.entries(shapes)) {
    const t = dict[name];
    if (t === undefined) {
      if (strict) throw new RangeError(`loadStateDict: missing parameter ${name} of shape ${formatShape(shape)}`);
      continue;
    }
    const checked = checkTensor(t, `loadStateDict: ${name}`, shape, [], Tensor.isTensor(t) ? t.dtype : live[name].dtype);
    const narrows = checked.dtype === 'float64' && live[name].dtype === 'float32';
    for (let i = 0; i < checked.data.length; i++) {
      const v = checked.data[i];
      if (!Number.isFinite(v)) {
        throw new RangeError(`loadStateDict: ${name} has a non-finite value (${v}) at flat index ${i}`);
      }
      if (narrows && !Number.isFinite(Math.fround(v))) {
        throw new RangeError(
          `loadStateDict: ${name} has a value (${v}) at flat index ${i} beyond the float32 range of the layer (it would become ${v > 0 ? '' : '-'}Infinity)`,
        );
      }
    }
    const target = live[name];
    const problem = elementCount(target.data) === 0 ? bufferProblem(target.data) : undefined;
    if (problem) throw new TypeError(`loadStateDict: the layer's parameter ${name}: ${describeBufferProblem(problem)}`);
    staged.push([target, checked]);
  }
  for (const [target, source] of staged) {
    target.data.set(source.data);
    parameterChanged(target);
  }
}

/**
 * The weight version of a layer: bumped whenever its parameters change (loadStateDict, an
 * optimizer step, markWeightsChanged()), so that the layer re-prepares its native weights and a
 * training run made before the change is known to be stale.
 */
export class WeightVersion {
  value = 0;
  bump(): void {
    this.value++;
  }
}

const owners = new WeakMap<Tensor, WeightVersion>();

/** Registers `tensors` as parameters whose changes bump `version`. */
export function trackParameters(tensors: Iterable<Tensor>, version: WeightVersion): void {
  for (const t of tensors) owners.set(t, version);
}

/** Tells the owner of a parameter tensor (if any) that its values changed in place. */
export function parameterChanged(t: Tensor): void {
  owners.get(t)?.bump();
}
