// fit's progress display: a cli-progress bar per epoch on a TTY (loss, metrics, sequences/s, ETA),
// else one plain line per epoch (logs, CI), or nothing with verbose 0.
import cliProgress from 'cli-progress';
import type { Logs } from './callbacks.js';

function formatLogs(logs: Logs): string {
  return Object.entries(logs).map(([k, v]) => `${k}: ${Number.isFinite(v) ? v.toPrecision(4) : String(v)}`).join(' - ');
}

export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private started = 0;
  private seen = 0;
  private readonly tty: boolean;

  constructor(private readonly verbose: 0 | 1 | 2, private readonly epochs: number, private readonly batches: number) {
    this.tty = verbose === 1 && process.stderr.isTTY === true;
  }

  startEpoch(epoch: number): void {
    this.started = performance.now();
    this.seen = 0;
    if (!this.tty) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: `Epoch ${epoch + 1}/${this.epochs} [{bar}] {value}/{total} | {logs} | {rate} seq/s | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        stream: process.stderr,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(this.batches, 0, { logs: '', rate: '0' });
  }

  batch(done: number, seen: number, logs: Logs): void {
    this.seen = seen;
    if (!this.bar) return;
    const rate = seen / Math.max((performance.now() - this.started) / 1000, 1e-9);
    this.bar.update(done, { logs: formatLogs(logs), rate: rate.toFixed(0) });
  }

  endEpoch(epoch: number, logs: Logs, aborted: boolean): void {
    const seconds = (performance.now() - this.started) / 1000;
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
      if (Object.keys(logs).some((k) => k.startsWith('val_'))) process.stderr.write(`  ${formatLogs(logs)}\n`);
      return;
    }
    if (this.verbose === 0) return;
    const rate = this.seen / Math.max(seconds, 1e-9);
    console.log(`Epoch ${epoch + 1}/${this.epochs} - ${seconds.toFixed(1)}s - ${rate.toFixed(0)} seq/s - ${formatLogs(logs)}${aborted ? ' (aborted)' : ''}`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
