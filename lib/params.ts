// Loading a state dict into a layer's live parameters, shared by every layer.
import { checkTensor, formatShape, Tensor } from './tensor.js';

/**
 * Copies dict's tensors into `live` (all or nothing), checking names (when strict), shapes and that
 * every value is finite. A tensor of the other dtype is converted (float64 into float32 rounds).
 */
export function loadParameters(
  className: string,
  live: Record<string, Tensor>,
  shapes: Record<string, number[]>,
  dict: Record<string, Tensor>,
  strict: boolean,
): void {
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
    const checked = checkTensor(t, `loadStateDict: ${name}`, shape, [], t instanceof Tensor ? t.dtype : live[name].dtype);
    for (let i = 0; i < checked.data.length; i++) {
      if (!Number.isFinite(checked.data[i])) {
        throw new RangeError(`loadStateDict: ${name} has a non-finite value (${checked.data[i]}) at flat index ${i}`);
      }
    }
    staged.push([live[name], checked]);
  }
  for (const [target, source] of staged) target.data.set(source.data);
}
