// Writing legacy Keras `.h5` model files: the format tf.keras 2.x's `model.save("model.h5")`
// writes (keras/src/legacy/saving/legacy_h5_format.py: save_model_to_hdf5 and
// save_weights_to_hdf5_group; tf-keras/keras/saving/legacy/hdf5_format.py):
//
//   /                      attrs keras_version, backend, model_config (JSON, Keras 2 spelling)
//   /model_weights         attrs layer_names (every layer, in order), backend, keras_version
//   /model_weights/<layer> attr  weight_names (e.g. 'lstm/lstm_cell/kernel:0', get_weights() order)
//   /model_weights/<layer>/<weight name>   float32 datasets
//
// Reading is lib/io/keras-files.ts's loadKerasFile (both Keras formats).
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { Sequential } from '../model/sequential.js';
import { show } from '../options.js';
import { writeFileAtomic } from './files.js';
import { modelToKeras } from './keras.js';

/** The Keras version a written .h5 file names (the last tf.keras 2 release's format). */
export const KERAS2_VERSION_WRITTEN = '2.15.0';

type H5 = typeof import('h5wasm/node').default;
let h5Promise: Promise<H5> | undefined;
async function h5(): Promise<H5> {
  h5Promise ??= import('h5wasm/node').then(async (m) => {
    await m.default.ready;
    return m.default;
  });
  return h5Promise;
}

/**
 * Writes an rnnkit Sequential (built) as a legacy Keras `.h5` model file (layout above), with
 * modelToKeras(model, 'keras2') for the configuration and the weights; replaced atomically.
 * Errors: UnsupportedFeatureError for what Keras cannot express (nothing is written); TypeError for
 * a model that is not built or a bad path.
 */
export async function saveKerasH5File(model: Sequential, path: string): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`saveKerasH5File: path must be a non-empty string, got ${show(path)}`);
  if (!(model instanceof Sequential)) throw new TypeError(`saveKerasH5File: expected a Sequential, got ${show(model)}`);
  const { modelConfig, layers } = modelToKeras(model, 'keras2');
  const lib = await h5();
  const dir = await fs.promises.mkdtemp(nodePath.join(os.tmpdir(), 'rnnkit-h5-'));
  const tmp = nodePath.join(dir, 'model.h5');
  try {
    const f = new lib.File(tmp, 'w');
    if (typeof f.file_id !== 'bigint' || f.file_id < 0n) throw new Error(`saveKerasH5File: h5wasm could not create ${tmp}`);
    try {
      f.create_attribute('keras_version', KERAS2_VERSION_WRITTEN);
      f.create_attribute('backend', 'tensorflow');
      f.create_attribute('model_config', JSON.stringify(modelConfig));
      const mw = f.create_group('model_weights');
      mw.create_attribute('layer_names', layers.map((l) => l.name), [layers.length]);
      mw.create_attribute('backend', 'tensorflow');
      mw.create_attribute('keras_version', KERAS2_VERSION_WRITTEN);
      for (const l of layers) {
        const g = mw.create_group(l.name);
        // TimeDistributed's weights live in its own name scope ('time_distributed/kernel:0').
        const names = l.weights.map((w) => `${l.className === 'TimeDistributed' ? `${l.name}/${w.name.split('/').pop()}` : w.name}:0`);
        // A layer without weights has an empty weight_names (h5py writes np.array([]), float64).
        if (names.length > 0) g.create_attribute('weight_names', names, [names.length]);
        else g.create_attribute('weight_names', new Float64Array(0), [0], '<d');
        l.weights.forEach((w, j) => {
          // The weight name's slashes are groups inside the layer's group, as h5py creates them.
          const parts = names[j].split('/');
          let at = g;
          for (const p of parts.slice(0, -1)) at = (at.get(p) as typeof g | null) ?? at.create_group(p);
          at.create_dataset({ name: parts[parts.length - 1], data: w.data, shape: w.shape, dtype: '<f' });
        });
      }
    } finally {
      f.close();
    }
    await writeFileAtomic(path, new Uint8Array(await fs.promises.readFile(tmp)));
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
