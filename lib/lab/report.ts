// The lab's results table: per task and cell, the final held-out metric (mean ± standard deviation
// over seeds), how many seeds solved the task and the median steps to solve, and the time per run.
import { CELL_LABELS, type CellName } from './cells.js';
import type { LabResult, RunResult } from './run.js';

export interface SummaryRow {
  experiment: string;
  task: string;
  cell: CellName;
  seeds: number;
  /** Final held-out metric over seeds (NaN-free runs). */
  mean: number;
  sd: number;
  min: number;
  max: number;
  solved: number;
  /** Median over the solving seeds of the first solving step (null when none solved). */
  medianStepsToSolve: number | null;
  secondsPerRun: number;
  diverged: number;
  budgetHit: number;
  /** Means over seeds of the runs' extra values. */
  extra: Record<string, number>;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summarize(runs: RunResult[]): SummaryRow[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const k = `${r.experiment}\u0000${r.task}\u0000${r.cell}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.values()].map((g) => {
    const finals = g.map((r) => r.final).filter(Number.isFinite);
    const mean = finals.reduce((a, b) => a + b, 0) / finals.length;
    const sd = finals.length > 1 ? Math.sqrt(finals.reduce((a, b) => a + (b - mean) ** 2, 0) / (finals.length - 1)) : 0;
    const solvedSteps = g.map((r) => r.solvedStep).filter((s): s is number => s !== null);
    const extra: Record<string, number> = {};
    for (const key of new Set(g.flatMap((r) => Object.keys(r.extra)))) {
      const v = g.map((r) => r.extra[key]).filter((x) => x !== undefined && Number.isFinite(x));
      if (v.length) extra[key] = v.reduce((a, b) => a + b, 0) / v.length;
    }
    return {
      experiment: g[0].experiment, task: g[0].task, cell: g[0].cell, seeds: g.length,
      mean, sd, min: Math.min(...finals), max: Math.max(...finals),
      solved: solvedSteps.length, medianStepsToSolve: solvedSteps.length ? median(solvedSteps) : null,
      secondsPerRun: g.reduce((a, r) => a + r.seconds, 0) / g.length,
      diverged: g.filter((r) => r.diverged).length, budgetHit: g.filter((r) => r.budgetHit).length, extra,
    };
  });
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 0.001 || a >= 1e4) ? v.toExponential(2) : v.toFixed(a < 1 ? 4 : 3);
}

/** The tables of a lab run, one per experiment, in Markdown. */
export function resultsMarkdown(result: LabResult): string {
  const out: string[] = [];
  for (const e of result.experiments) {
    const c = e.config;
    out.push(`### ${e.name}`, '', `${c.cells.length} cells × ${c.seeds} seed(s) × ${e.tasks.length} task(s); ${c.steps} steps of batch ${c.batch}, ${c.units} units, Adam lr ${c.lr}, held-out evaluation every ${c.evalEvery} steps.`, '');
    const extraKeys = [...new Set(result.summary.filter((r) => r.experiment === e.name).flatMap((r) => Object.keys(r.extra)))];
    for (const t of e.tasks) {
      const rows = result.summary.filter((r) => r.experiment === e.name && r.task === t.name);
      out.push(`**${t.name}** — ${t.metric} (${t.lowerIsBetter ? 'lower' : 'higher'} is better; trivial baseline ${fmt(t.baseline)}; solved at ${t.lowerIsBetter ? '≤' : '≥'} ${fmt(t.solvedAt)})`, '');
      const head = ['cell', `final ${t.metric} (mean ± sd)`, 'min … max', 'solved', 'median steps to solve', 's/run', ...extraKeys];
      out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
      for (const r of rows) {
        const notes = [r.diverged ? `${r.diverged} diverged` : '', r.budgetHit ? `${r.budgetHit} cut by budget` : ''].filter(Boolean).join(', ');
        out.push(`| ${CELL_LABELS[r.cell].label}${notes ? ` (${notes})` : ''} | ${fmt(r.mean)} ± ${fmt(r.sd)} | ${fmt(r.min)} … ${fmt(r.max)} | ${r.solved}/${r.seeds} | ${r.medianStepsToSolve ?? '—'} | ${r.secondsPerRun.toFixed(1)} | ${extraKeys.map((k) => fmt(r.extra[k] ?? NaN)).join(' | ')}${extraKeys.length ? ' |' : ''}`.replace(/\| \|$/, '|'));
      }
      out.push('');
    }
  }
  if (result.flows.length) {
    out.push('### gradient flow', '', `‖∂L/∂h_t‖ on ${result.flows[0].task} (probe batch, seed 1): the norm at the first step over the norm at the last, at initialisation and after training.`, '');
    out.push('| cell | ‖∂L/∂h_0‖ / ‖∂L/∂h_T−1‖ at init | after training |', '|---|---|---|');
    const cells = [...new Set(result.flows.map((f) => f.cell))];
    for (const c of cells) {
      const ratio = (phase: string) => {
        const f = result.flows.find((x) => x.cell === c && x.phase === phase);
        return f ? fmt(f.norms[0] / f.norms[f.norms.length - 1]) : '—';
      };
      out.push(`| ${CELL_LABELS[c].label} | ${ratio('initialisation')} | ${ratio('after training')} |`);
    }
    out.push('');
  }
  out.push(`Total ${result.seconds.toFixed(0)} s with ${result.threads} native thread(s).`, '');
  return out.join('\n');
}
