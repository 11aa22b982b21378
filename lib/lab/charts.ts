// The lab's pictures: vega-lite specifications compiled and rendered to SVG in Node (no browser,
// no native dependencies).
import * as vl from 'vega-lite';
import * as vega from 'vega';
import { Resvg } from '@resvg/resvg-js';
import { CELL_LABELS } from './cells.js';
import type { FlowResult, RunResult } from './run.js';

/** Renders a vega-lite specification to an SVG document. */
export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** An SVG document as PNG, at twice its size (resvg; text in the system's fonts). */
export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white' }).render().asPng();
}

/** Mean over seeds of the held-out metric at each evaluation step: one line per cell, one panel per task. */
export function learningCurveSpec(runs: RunResult[], tasks: { name: string; metric: string; baseline: number }[]): vl.TopLevelSpec {
  const baseline = new Map(tasks.map((t) => [t.name, t.baseline]));
  const metric = tasks[0]?.metric ?? 'metric';
  // An MSE falls by orders of magnitude (from ~2 at initialisation to ~1e-3 solved): a log axis.
  const logScale = metric === 'MSE';
  const values = runs.flatMap((r) => r.curve.filter((p) => Number.isFinite(p.metric) && (!logScale || p.metric > 0)).map((p) => ({
    task: r.task, cell: CELL_LABELS[r.cell].label, seed: r.seed, step: p.step, metric: p.metric, baseline: baseline.get(r.task),
  })));
  const order = [...new Set(runs.map((r) => CELL_LABELS[r.cell].label))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Learning curves (held-out ${metric}, mean over seeds; dashed: trivial baseline)`,
    data: { values },
    facet: { column: { field: 'task', type: 'nominal', title: null, sort: tasks.map((t) => t.name) } },
    spec: {
      width: 260,
      height: 200,
      layer: [
        {
          mark: { type: 'line', strokeWidth: 1.6 },
          encoding: {
            x: { field: 'step', type: 'quantitative', title: 'training step' },
            y: { aggregate: 'mean', field: 'metric', type: 'quantitative', title: metric, ...(logScale ? { scale: { type: 'log' } } : {}) },
            color: { field: 'cell', type: 'nominal', title: 'cell', sort: order, scale: { scheme: 'tableau20' } },
          },
        },
        {
          mark: { type: 'rule', strokeDash: [4, 4], color: '#444' },
          encoding: { y: { aggregate: 'mean', field: 'baseline', type: 'quantitative' } },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as vl.TopLevelSpec;
}

export function learningCurveChart(runs: RunResult[], tasks: { name: string; metric: string; baseline: number }[]): Promise<string> {
  return renderSvg(learningCurveSpec(runs, tasks));
}

/** log10 ‖∂L/∂h_t‖ over t, one row per cell, at initialisation and after training. */
export function gradientFlowSpec(flows: FlowResult[]): vl.TopLevelSpec {
  const floor = 1e-30;
  const values = flows.flatMap((f) => f.norms.map((n, t) => ({ cell: CELL_LABELS[f.cell].label, phase: f.phase, t, log10: Math.log10(Math.max(n, floor)) })));
  const order = [...new Set(flows.map((f) => CELL_LABELS[f.cell].label))];
  const task = flows[0]?.task ?? '';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Gradient flow on ${task}: log10 ‖∂L/∂h_t‖ over the step t (the loss is read after the last step)`,
    data: { values },
    facet: { row: { field: 'phase', type: 'nominal', title: null, sort: ['initialisation', 'after training'] } },
    spec: {
      width: 520,
      height: 22 * order.length,
      mark: 'rect',
      encoding: {
        x: { field: 't', type: 'ordinal', title: 'step t', axis: { labelExpr: 'datum.value % 10 === 0 ? datum.label : ""', labelAngle: 0 } },
        y: { field: 'cell', type: 'nominal', title: null, sort: order },
        color: { field: 'log10', type: 'quantitative', title: 'log10 ‖∂L/∂h_t‖', scale: { scheme: 'viridis' } },
      },
    },
  } as vl.TopLevelSpec;
}

export function gradientFlowChart(flows: FlowResult[]): Promise<string> {
  return renderSvg(gradientFlowSpec(flows));
}
