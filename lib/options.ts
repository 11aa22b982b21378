// Checks shared by everything that takes an options object: unknown keys, booleans, integers, bounded
// numbers and seeds. Each failure is a TypeError (wrong kind of value, unknown key) or a RangeError
// (a number out of range) whose message names the option, e.g. `options.useBias: expected a boolean, got 0`.

/** A value as error messages quote it: 0, "yes", undefined, null, an array, an object. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol' || typeof v === 'function') return `a ${typeof v}`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Every option name of T mapped to true (spreadable into the table of an extended interface). */
export type OptionTable<T extends object> = { readonly [K in keyof Required<T>]: true };

/**
 * The option names of the options interface T, for checkOptions. The compiler checks the list
 * against T (a missing or an extra name does not type-check), so the two cannot drift apart.
 */
export function optionNames<T extends object>(names: OptionTable<T>): readonly string[] {
  return Object.freeze(Object.keys(names));
}

/**
 * Returns `options` when it is an object (not an array) whose own keys are all in `allowed`; otherwise
 * a TypeError naming every unknown key and listing the valid ones. `what` names the object in messages
 * ('options', 'GRU.forward: options'); `owner`, when given, says whose options they are ('GRU').
 */
export function checkOptions<T>(options: T, what: string, allowed: readonly string[], owner?: string): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${what}: expected an object, got ${show(options)}`);
  }
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(
      `${unknown.map((k) => `${what}.${k}`).join(', ')}: unknown option${unknown.length > 1 ? 's' : ''}` +
        `${owner ? ` for ${owner}` : ''}; valid options: ${allowed.join(', ')}`,
    );
  }
  return options;
}

/** A boolean option: `fallback` when undefined, else it must be true or false. */
export function flag(v: unknown, what: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new TypeError(`${what}: expected a boolean, got ${show(v)}`);
  return v;
}

/** A positive safe integer. */
export function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new TypeError(`${what}: expected a positive integer, got ${show(v)}`);
  }
  return v;
}

/** The largest size of one dimension the native core takes (int32; native/binding/addon.cc read_dim). */
export const MAX_DIMENSION = 2 ** 31 - 1;

/**
 * A size (inputSize, units, projSize…): a positive integer (else a TypeError) below 2^31, the native
 * core's int32 limit (else a RangeError).
 */
export function dimension(v: unknown, what: string): number {
  const n = positiveInt(v, what);
  if (n > MAX_DIMENSION) throw new RangeError(`${what}: expected a positive integer at most ${MAX_DIMENSION} (2^31 - 1), got ${n}`);
  return n;
}

/**
 * A number in [lo, hi]: a TypeError when it is not a number, a RangeError when it is NaN, infinite or
 * out of range. `note` is appended to the expectation (e.g. ' (0 = off)').
 */
export function numberIn(v: unknown, what: string, lo: number, hi: number, note = ''): number {
  if (typeof v !== 'number') throw new TypeError(`${what}: expected a number in [${lo}, ${hi}]${note}, got ${show(v)}`);
  if (!Number.isFinite(v) || v < lo || v > hi) throw new RangeError(`${what}: expected a finite number in [${lo}, ${hi}]${note}, got ${v}`);
  return v;
}

/** A seed: undefined (a random one), or a safe integer (the generator uses it modulo 2^32). */
export function seedOption(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new TypeError(`${what}: expected an integer (a safe integer, used modulo 2^32), got ${show(v)}`);
  }
  return v;
}

/** A dtype option: 'float32' when undefined, else 'float32' or 'float64' (a TypeError otherwise). */
export function dtypeOption(v: unknown, what: string): 'float32' | 'float64' {
  if (v === undefined) return 'float32';
  if (v !== 'float32' && v !== 'float64') throw new TypeError(`${what}: expected 'float32' or 'float64', got ${show(v)}`);
  return v;
}
