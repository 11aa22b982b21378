// PyTorch as a peer: bench/torch_bench.py runs in one long-lived python3 child, driven with one
// JSON request per line, so PyTorch takes its turn in the same interleaved rounds as the others.
// Tensors travel through raw float32 files in a temporary directory; times are taken in Python.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { gateCount, layerInputSize, outputSize } from './cases.js';
import type { Impl } from './peers.js';
import type { Problem } from './problem.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_bench.py');

type Answer = { ok: boolean; error?: string; [k: string]: unknown };

/**
 * A PyTorch configuration for its own child process: torch.set_num_threads(torchThreads) (sent
 * with every measure request), OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = blasThreads and
 * OPENBLAS_CORETYPE unset (OpenBLAS detects the core) or Haswell (its AVX2 kernels), both in the
 * child's environment only.
 */
export interface TorchConfig {
  torchThreads: number;
  blasThreads: number;
  coretype: 'auto' | 'Haswell';
}

/** The configurations the bench searches per case: {1, 2} × {1, 2} × {unset, Haswell}. */
export const TORCH_SEARCH_CONFIGS: readonly TorchConfig[] = [1, 2].flatMap((torchThreads) =>
  [1, 2].flatMap((blasThreads) => (['auto', 'Haswell'] as const).map((coretype) => ({ torchThreads, blasThreads, coretype }))),
);

export function torchConfigKey(c: TorchConfig): string {
  return `t${c.torchThreads}-b${c.blasThreads}-${c.coretype === 'auto' ? 'auto' : 'hsw'}`;
}

export function torchConfigLabel(c: TorchConfig): string {
  return `set_num_threads(${c.torchThreads}), OPENBLAS/OMP_NUM_THREADS=${c.blasThreads}, OPENBLAS_CORETYPE ${c.coretype === 'auto' ? 'unset' : 'Haswell'}`;
}

/** The environment of a child running `c`: this process's, with the three variables replaced. */
export function torchConfigEnv(c: TorchConfig, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, OPENBLAS_NUM_THREADS: String(c.blasThreads), OMP_NUM_THREADS: String(c.blasThreads) };
  if (c.coretype === 'auto') delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = c.coretype;
  return env;
}

export interface TorchInfo {
  torch: string;
  python: string;
  /** torch.get_num_threads() when the child started (when the script reports it). */
  threads?: number;
}

export class TorchPeer {
  private readonly waiting: { resolve: (a: Answer) => void; reject: (e: Error) => void }[] = [];
  private exited: Error | undefined;
  private readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-bench-'));
  private nextId = 0;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, script: string) {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      try {
        w.resolve(JSON.parse(line) as Answer);
      } catch {
        w.reject(new Error(`${path.basename(script)} printed a line that is not JSON: ${line.slice(0, 200)}`));
      }
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`[torch] ${d.toString()}`));
    const fail = (err: Error) => {
      this.exited ??= err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    child.on('error', fail);
    child.stdin.on('error', () => {}); // EPIPE when python is missing or died: reported through 'error'/'exit'
    child.on('exit', (code, signal) => fail(new Error(`python exited (${signal ?? `code ${code}`})`)));
  }

  /**
   * Starts the child (`script`: bench/torch_bench.py, or another server speaking the same
   * line protocol) and asks for torch's version; rejects with the reason when torch is unusable.
   */
  static async start(python: string, script = SCRIPT, env?: NodeJS.ProcessEnv): Promise<{ peer: TorchPeer; info: TorchInfo }> {
    const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    const peer = new TorchPeer(child, script);
    try {
      const a = await peer.request({ op: 'hello' }, 120_000);
      return { peer, info: { torch: String(a.torch), python: String(a.python), ...(typeof a.threads === 'number' ? { threads: a.threads } : {}) } };
    } catch (err) {
      await peer.close();
      throw err;
    }
  }

  request(req: Record<string, unknown>, timeoutMs = 0): Promise<Answer> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<Answer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) timer = setTimeout(() => reject(new Error(`no answer from python within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiting.push({
        resolve: (a) => {
          clearTimeout(timer);
          if (a.ok) resolve(a);
          else reject(new Error(a.error ?? 'python reported an error'));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  private file(name: string, data?: Float32Array): string {
    const f = path.join(this.tmp, name);
    if (data) fs.writeFileSync(f, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return f;
  }

  /** nn.LSTM / nn.GRU with the problem's weights (PyTorch names: rnnkit's layout is PyTorch's). */
  async impl(p: Problem, threads: number, label: string, key = 'torch'): Promise<Impl> {
    const { c } = p;
    const id = `${c.id}-${this.nextId++}`;
    const G = gateCount(c.cell), H = c.hiddenSize;
    const params: [string, number[]][] = [];
    const blobs: Float32Array[] = [];
    p.weights.forEach((row, l) =>
      row.forEach((w, d) => {
        const suffix = `_l${l}${d === 1 ? '_reverse' : ''}`;
        params.push([`weight_ih${suffix}`, [G * H, layerInputSize(c, l)]], [`weight_hh${suffix}`, [G * H, H]]);
        params.push([`bias_ih${suffix}`, [G * H]], [`bias_hh${suffix}`, [G * H]]);
        blobs.push(w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh);
      }),
    );
    const flat = new Float32Array(blobs.reduce((n, b) => n + b.length, 0));
    blobs.reduce((offset, b) => (flat.set(b, offset), offset + b.length), 0);
    await this.request({
      op: 'setup',
      id,
      cell: c.cell,
      work: c.work,
      B: c.batch,
      T: c.steps,
      I: c.inputSize,
      H,
      layers: c.layers,
      bidirectional: c.bidirectional,
      params,
      weights: this.file(`${id}-w.bin`, flat),
      x: this.file(`${id}-x.bin`, p.x),
      dy: c.work === 'train' ? this.file(`${id}-dy.bin`, p.dy) : null,
    });
    const out = this.file(`${id}-y.bin`);
    return {
      key,
      label,
      threads,
      baseline: 'rnnkit',
      note:
        c.cell === 'gru'
          ? 'torch: nn.GRU is the reset-after (linear-before-reset) form, as rnnkit\'s default'
          : c.work === 'train'
            ? 'torch: train = forward + torch.autograd.grad over the parameters and x'
            : 'torch: inference under torch.no_grad()',
      measure: async (calls) => (await this.request({ op: 'measure', id, calls, threads })).ms as number[],
      check: async () => {
        await this.request({ op: 'check', id, out });
        const buf = fs.readFileSync(out);
        const y = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
        if (y.length !== c.batch * c.steps * outputSize(c)) throw new Error(`torch check output has ${y.length} values`);
        return y;
      },
      release: async () => {
        await this.request({ op: 'release', id });
        for (const f of fs.readdirSync(this.tmp).filter((n) => n.startsWith(`${id}-`))) fs.rmSync(path.join(this.tmp, f), { force: true });
      },
    };
  }

  async close(): Promise<void> {
    if (!this.exited) {
      this.child.stdin.end(`${JSON.stringify({ op: 'quit' })}\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.child.kill();
          resolve();
        }, 5000);
        this.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

