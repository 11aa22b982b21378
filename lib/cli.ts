// The rnnkit command line: inspect a model of any format, convert between formats.
//
//   rnnkit inspect <file|dir> [--json] [--format F] [--torch-layers SPEC]
//   rnnkit convert <in> <out> [--to F] [--from F] [--torch-layers SPEC] [--force]
//   rnnkit lab <experiment|all> [--cells LIST] [--seeds N] [--steps N] [--lengths LIST] [--budget S] [--out DIR] …
//
// Exit codes: 0 done; 1 the input cannot be read (missing, malformed, unsupported layer or
// operator) or the output cannot be written; 2 usage error; 3 the conversion is refused because
// the output format cannot express a feature of the model (the message names it).
import fs from 'node:fs';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { UnsupportedFeatureError } from './io/layouts.js';
import { FORMAT_DESCRIPTIONS, MODEL_FORMATS, WRITABLE_FORMATS, detectFormat, outputFormat, parseTorchLayers, readModel, writeModel, type ModelFormat } from './io/formats.js';
import { layerConfig } from './model/config.js';
import type { Sequential } from './model/sequential.js';
import { describeOnnx } from './io/onnx.js';
import { describeKerasFile } from './io/keras-files.js';
import { EXPERIMENTS, runLab, type LabOptions } from './lab/run.js';
import { resultsMarkdown } from './lab/report.js';
import { CELL_NAMES, type CellName } from './lab/cells.js';

export const EXIT = { ok: 0, input: 1, usage: 2, refused: 3 } as const;

class UsageError extends Error {}

/** What inspect reports, also its --json output. */
export interface ModelReport {
  path: string;
  format: ModelFormat;
  formatDescription: string;
  name: string;
  layers: { index: number; className: string; outputShape: (number | null)[] | null; parameters: number; config: Record<string, unknown> }[];
  parameters: Record<string, number[]>;
  totalParameters: number;
  /** What the file says about itself: ONNX opset and producer, the Keras version. */
  source?: Record<string, unknown>;
}

/** The file's own description of itself, where the format has one. */
async function sourceDetails(p: string, format: ModelFormat): Promise<Record<string, unknown> | undefined> {
  if (format === 'onnx') {
    const d = describeOnnx(fs.readFileSync(p), { where: p });
    return { opset: d.opset, irVersion: d.irVersion, producer: d.producer, operators: d.nodes };
  }
  if (format === 'keras' || format === 'keras-h5') return { kerasVersion: (await describeKerasFile(p)).kerasVersion };
  return undefined;
}

/** The description inspect prints for `model` read from `p` in `format`. */
export function modelReport(p: string, format: ModelFormat, model: Sequential): ModelReport {
  const params = model.namedParameters();
  const shapes = (model as unknown as { shapes: (number | null)[][] }).shapes;
  const layers = model.layers.map((l, i) => {
    const prefix = `${i}.`;
    const count = Object.entries(params).filter(([k]) => k.startsWith(prefix)).reduce((a, [, t]) => a + t.size, 0);
    const { className, config } = layerConfig(l);
    return { index: i, className, outputShape: shapes[i] ?? null, parameters: count, config };
  });
  return {
    path: p,
    format,
    formatDescription: FORMAT_DESCRIPTIONS[format],
    name: model.name,
    layers,
    parameters: Object.fromEntries(Object.entries(params).map(([k, t]) => [k, [...t.shape]])),
    totalParameters: Object.values(params).reduce((a, t) => a + t.size, 0),
  };
}

function describeConfig(c: Record<string, unknown>): string {
  return Object.entries(c)
    .filter(([k]) => k !== 'seed')
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
}

function formatReport(r: ModelReport): string {
  const src = r.source ? ` (${Object.entries(r.source).map(([k, v]) => `${k} ${typeof v === 'object' ? Object.entries(v as object).map(([a, b]) => `${a}×${b}`).join(' ') : String(v)}`).join(', ')})` : '';
  const lines = [`${r.path}: ${r.formatDescription} [${r.format}]${src}`, `model "${r.name}", ${r.layers.length} layers, ${r.totalParameters.toLocaleString('en-US')} parameters`];
  for (const l of r.layers) {
    const shape = l.outputShape ? `(batch, ${l.outputShape.map((d) => d ?? 'steps').join(', ')})` : '(unbuilt)';
    lines.push(`  ${l.index} ${l.className.padEnd(16)} output ${shape.padEnd(22)} params ${String(l.parameters).padStart(9)}  ${describeConfig(l.config)}`);
  }
  lines.push('parameters:');
  for (const [k, s] of Object.entries(r.parameters)) lines.push(`  ${k.padEnd(28)} [${s.join(', ')}]`);
  return lines.join('\n');
}

function formatOption(v: string | undefined, what: string): ModelFormat | undefined {
  if (v === undefined) return undefined;
  if (!MODEL_FORMATS.includes(v as ModelFormat)) throw new UsageError(`${what}: unknown format '${v}' (known: ${MODEL_FORMATS.join(', ')})`);
  return v as ModelFormat;
}

function intArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
function numberArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}
function intListArg(v: string): number[] {
  const list = v.split(',').map((s) => Number(s));
  if (list.some((n) => !Number.isSafeInteger(n) || n < 2)) throw new InvalidArgumentError('expected a comma-separated list of integers >= 2');
  return list;
}
function cellListArg(v: string): CellName[] {
  const list = v.split(',').map((s) => s.trim());
  const bad = list.filter((c) => !CELL_NAMES.includes(c as CellName));
  if (bad.length) throw new InvalidArgumentError(`unknown cell(s) ${bad.join(', ')} (known: ${CELL_NAMES.join(', ')})`);
  return list as CellName[];
}

/** Runs the command line with `argv` (without node and the script); returns the exit code. */
export async function main(argv: string[], io: { out: (s: string) => void; err: (s: string) => void } = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
}): Promise<number> {
  const program = new Command('rnnkit');
  program
    .description('Inspect and convert recurrent models between rnnkit, PyTorch (safetensors), Keras (.keras/.h5), TensorFlow.js and ONNX.')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError()
    .addHelpText('after', `
Formats: ${MODEL_FORMATS.map((f) => `${f} (${FORMAT_DESCRIPTIONS[f]})`).join('; ')}.
Exit codes: 0 done, 1 the input cannot be read or the output written, 2 usage error, 3 the output format cannot express a feature of the model.`);
  let code: number = EXIT.ok;
  const torchLayersOption = new Option('--torch-layers <spec>', 'layers of a PyTorch state_dict rnnkit did not write, in order: "emb.:Embedding,lstm.:LSTM,fc.:Linear"');
  program
    .command('inspect')
    .description('print the format, layers, output shapes, parameter counts and options of a model')
    .argument('<path>', 'model file or directory')
    .option('--json', 'print the report as JSON')
    .addOption(new Option('--format <format>', 'the input format (default: detected)').choices(MODEL_FORMATS as string[]))
    .addOption(torchLayersOption)
    .action(async (p: string, opts: { json?: boolean; format?: string; torchLayers?: string }) => {
      const format = formatOption(opts.format, '--format') ?? detectFormat(p);
      const { model } = await readModel(p, { format, ...(opts.torchLayers ? { torchLayers: parseTorchLayers(opts.torchLayers) } : {}) });
      const report = modelReport(p, format, model);
      const source = await sourceDetails(p, format);
      if (source) report.source = source;
      io.out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    });
  program
    .command('convert')
    .description('convert a model to another format (the output format from --to or the extension: .onnx, .keras, .h5, .safetensors; a path without extension is an rnnkit directory)')
    .argument('<in>', 'input model file or directory')
    .argument('<out>', 'output file or directory')
    .addOption(new Option('--to <format>', 'the output format').choices(WRITABLE_FORMATS as string[]))
    .addOption(new Option('--from <format>', 'the input format (default: detected)').choices(MODEL_FORMATS as string[]))
    .addOption(new Option('--torch-layers <spec>', torchLayersOption.description))
    .option('--force', 'overwrite an existing output')
    .action(async (input: string, out: string, opts: { to?: string; from?: string; torchLayers?: string; force?: boolean }) => {
      let to: ModelFormat;
      try {
        to = outputFormat(out, opts.to);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const existed = fs.existsSync(out);
      if (existed && !opts.force) throw new UsageError(`${out} exists; pass --force to overwrite it`);
      const from = formatOption(opts.from, '--from') ?? detectFormat(input);
      const { model } = await readModel(input, { format: from, ...(opts.torchLayers ? { torchLayers: parseTorchLayers(opts.torchLayers) } : {}) });
      try {
        await writeModel(model, out, to);
      } catch (e) {
        // A refused or failed conversion leaves nothing behind where nothing was.
        if (!existed) fs.rmSync(out, { recursive: true, force: true });
        throw e;
      }
      io.out(`${input} [${from}] -> ${out} [${to}]: ${model.layers.length} layers, ${Object.values(model.namedParameters()).reduce((a, t) => a + t.size, 0).toLocaleString('en-US')} parameters\n`);
    });
  program
    .command('lab')
    .description('train a grid of recurrent cells on synthetic tasks (fixed seeds, several per cell) and report a table and SVG pictures')
    .addArgument(new Argument('<experiment>', 'what to run').choices([...EXPERIMENTS, 'all']))
    .option('--cells <list>', `comma-separated cells (${CELL_NAMES.join(', ')}); default: the experiment's`, cellListArg)
    .option('--seeds <n>', 'repetitions per cell (seeds 1..n)', intArg)
    .option('--steps <n>', 'training steps per run', intArg)
    .option('--lengths <list>', 'sequence lengths: adding/latch T, copy delays, Reber and char-LM windows', intListArg)
    .option('--units <n>', 'hidden units', intArg)
    .option('--batch <n>', 'batch size', intArg)
    .option('--lr <x>', "Adam's learning rate", numberArg)
    .option('--eval-every <n>', 'held-out evaluation every n steps', intArg)
    .option('--test-size <n>', 'held-out sequences', intArg)
    .option('--budget <seconds>', 'wall-clock budget for the whole lab; each run gets its share of what is left', numberArg)
    .option('--threads <n>', 'native threads (default 1)', intArg)
    .option('--text <file>', 'char-LM corpus (.txt or .txt.gz; default the demo text)')
    .option('--flow-cells <list>', 'cells whose gradient flow is pictured (adding)', cellListArg)
    .option('--flow-length <n>', 'adding length T of the gradient-flow picture', intArg)
    .option('--out <dir>', 'write results.json, results.md and the SVG pictures here')
    .option('--png', 'also write the pictures as PNG (with --out)')
    .option('--json', 'print the results as JSON instead of tables')
    .option('--no-progress', 'no progress bar')
    .action(async (experiment: string, opts: Record<string, unknown>) => {
      const o: LabOptions = { experiment: experiment as LabOptions['experiment'], progress: opts.progress !== false && !opts.json };
      const map: [string, keyof LabOptions][] = [
        ['cells', 'cells'], ['seeds', 'seeds'], ['steps', 'steps'], ['lengths', 'lengths'], ['units', 'units'], ['batch', 'batch'], ['lr', 'lr'],
        ['evalEvery', 'evalEvery'], ['testSize', 'testSize'], ['budget', 'budgetSeconds'], ['threads', 'threads'], ['text', 'text'],
        ['flowCells', 'flowCells'], ['flowLength', 'flowLength'], ['out', 'out'], ['png', 'png'],
      ];
      for (const [from, to] of map) if (opts[from] !== undefined) (o as unknown as Record<string, unknown>)[to] = opts[from];
      let result;
      try {
        result = await runLab(o);
      } catch (e) {
        if (e instanceof TypeError || e instanceof RangeError) throw new UsageError(e.message.replace(/^runLab: options\.?/, '--'));
        throw e;
      }
      io.out(opts.json ? `${JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n` : `${resultsMarkdown(result)}\n`);
      if (!opts.json && result.files.length) io.out(`wrote ${result.files.join(', ')}\n`);
    });
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with code 0; everything else commander throws is a usage error.
      code = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else if (e instanceof UsageError) {
      io.err(`rnnkit: ${e.message}\n`);
      code = EXIT.usage;
    } else if (e instanceof UnsupportedFeatureError) {
      io.err(`rnnkit: refused: ${e.message}\n`);
      code = EXIT.refused;
    } else {
      io.err(`rnnkit: ${(e as Error).message ?? String(e)}\n`);
      code = EXIT.input;
    }
  }
  return code;
}
