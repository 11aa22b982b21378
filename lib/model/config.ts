// Layer configurations: every model layer as { className, config } (JSON-safe) and back, through one
// registry of classes (tfjs-layers' getConfig/fromConfig + serialization registry).
import { show } from '../options.js';
import { RecurrentBase } from '../layers/base.js';
import { GRU, LSTM, Recurrent, SimpleRNN } from '../layers/recurrent.js';
import { Bidirectional, DropoutWrapper } from '../layers/wrappers.js';
import { Dense } from '../layers/dense.js';
import { Activation, Dropout, Embedding, Masking, RepeatVector, TimeDistributed } from '../layers/shaping.js';

export interface LayerConfig {
  className: string;
  config: Record<string, unknown>;
}

type AnyLayer = RecurrentBase | Dense | Embedding | Dropout | RepeatVector | Masking | Activation | TimeDistributed;

/** The configuration of a layer (its constructor options; wrappers nest their layers). */
export function layerConfig(layer: AnyLayer): LayerConfig {
  if (layer instanceof Bidirectional) {
    const inner = layer.dropoutSource ? layerConfig(layer.dropoutSource) : layerConfig(layer.forwardLayer);
    return { className: 'Bidirectional', config: { layer: inner, mergeMode: layer.merge, backwardLayer: layerConfig(layer.backwardLayer) } };
  }
  if (layer instanceof DropoutWrapper) {
    return {
      className: 'DropoutWrapper',
      config: {
        layer: layerConfig(layer.layer),
        inputKeepProb: layer.inputKeepProb, outputKeepProb: layer.outputKeepProb, stateKeepProb: layer.stateKeepProb,
        variationalRecurrent: layer.variationalRecurrent, ...(layer.seed !== undefined ? { seed: layer.seed } : {}),
      },
    };
  }
  if (layer instanceof TimeDistributed) return { className: 'TimeDistributed', config: { layer: layerConfig(layer.layer) } };
  if (layer instanceof Recurrent || layer instanceof Dense || layer instanceof Embedding || layer instanceof Dropout ||
      layer instanceof RepeatVector || layer instanceof Masking || layer instanceof Activation) {
    return { className: layer.className, config: JSON.parse(JSON.stringify(layer.options)) as Record<string, unknown> };
  }
  throw new TypeError(`layerConfig: cannot describe ${show(layer)}`);
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${what}: expected an object, got ${show(v)}`);
  return v as Record<string, unknown>;
}

/** A new layer from layerConfig's output; unknown classes and options are TypeErrors naming them. */
export function layerFromConfig(c: unknown, what = 'config'): AnyLayer {
  const o = object(c, what);
  const config = object(o.config, `${what}.config`);
  switch (o.className) {
    case 'SimpleRNN': return new SimpleRNN(config as never);
    case 'LSTM': return new LSTM(config as never);
    case 'GRU': return new GRU(config as never);
    case 'Dense': return new Dense(config as never);
    case 'Embedding': return new Embedding(config as never);
    case 'Dropout': return new Dropout(config as never);
    case 'RepeatVector': return new RepeatVector(config as never);
    case 'Masking': return new Masking(config as never);
    case 'Activation': return new Activation(config as never);
    case 'TimeDistributed': {
      const inner = layerFromConfig(config.layer, `${what}.config.layer`);
      return new TimeDistributed(inner as Dense);
    }
    case 'DropoutWrapper': {
      const { layer, ...rest } = config;
      return new DropoutWrapper(layerFromConfig(layer, `${what}.config.layer`) as Recurrent, rest as never);
    }
    case 'Bidirectional': {
      const { layer, backwardLayer, ...rest } = config;
      const inner = layerFromConfig(layer, `${what}.config.layer`) as Recurrent | DropoutWrapper;
      const back = backwardLayer === undefined ? undefined : (layerFromConfig(backwardLayer, `${what}.config.backwardLayer`) as Recurrent);
      return new Bidirectional(inner, { ...(rest as object), ...(back ? { backwardLayer: back } : {}) });
    }
    default:
      throw new TypeError(
        `${what}.className: unknown layer ${show(o.className)}; known: SimpleRNN, LSTM, GRU, Bidirectional, DropoutWrapper, Dense, Embedding, Dropout, RepeatVector, Masking, Activation, TimeDistributed`,
      );
  }
}
