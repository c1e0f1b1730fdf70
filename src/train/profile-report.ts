// Text tables of a step profile: phases, top kernels by total time, counters, and a line saying where
// kernel times come from (GPU timestamps, or host time only). Returns lines; the caller prints them.
import type { KernelRow, PhaseRow, ProfileReport, StepCounters, StepProfile } from './profile.js';

/** Formatting options. */
export interface ReportOptions {
  /** Kernel rows shown (the rest are summed in one line); default 20. */
  readonly top?: number;
}

const int = (n: number): string => Math.round(n).toLocaleString('en');
const ms = (n: number): string => n.toFixed(n >= 100 ? 1 : n >= 1 ? 2 : 3);
const pct = (n: number, total: number): string => (total > 0 ? `${((100 * n) / total).toFixed(1)}%` : '-');

/** Lays out rows in columns: the first left-aligned, the others right-aligned. */
function columns(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** The kernel table: top rows by total time, then one line for the rest. */
export function kernelTable(kernels: readonly KernelRow[], timestamps: boolean, top = 20): string[] {
  const total = kernels.reduce((a, k) => a + k.ms, 0);
  const count = kernels.reduce((a, k) => a + k.count, 0);
  const shown = kernels.slice(0, top);
  const head = `kernel (top ${shown.length} of ${kernels.length} by ${timestamps ? 'GPU' : 'host'} time)`;
  const rows: string[][] = [[head, 'count', 'total ms', 'mean µs', 'share']];
  for (const k of shown) rows.push([k.name, int(k.count), ms(k.ms), k.meanUs.toFixed(1), pct(k.ms, total)]);
  const rest = kernels.slice(top);
  if (rest.length > 0) {
    const restMs = rest.reduce((a, k) => a + k.ms, 0);
    const restN = rest.reduce((a, k) => a + k.count, 0);
    rows.push([`(${rest.length} more kernels)`, int(restN), ms(restMs), '', pct(restMs, total)]);
  }
  rows.push(['all kernels', int(count), ms(total), count > 0 ? ((total * 1000) / count).toFixed(1) : '-', '']);
  return columns(rows);
}

/** The phase table (host wall time of each phase, device sync included). */
export function phaseTable(phases: readonly PhaseRow[], steps: number): string[] {
  const total = phases.reduce((a, p) => a + p.totalMs, 0);
  const rows: string[][] = [['phase (host time, synced)', 'total ms', 'ms/step', 'share']];
  for (const p of phases) rows.push([p.name, ms(p.totalMs), ms(p.totalMs / steps), pct(p.totalMs, total)]);
  return columns(rows);
}

/** One line of counters. */
export function countersLine(c: StepCounters): string {
  return (
    `buffers created ${int(c.buffersCreated)}, submits ${int(c.submits)}, dispatches ${int(c.dispatches)}, ` +
    `compiles ${int(c.compiles)}, bytes up ${int(c.bytesUploaded)}, bytes down ${int(c.bytesDownloaded)}`
  );
}

/** The whole report as lines: header, phases, kernels, counters. */
export function formatProfile(r: ProfileReport, opts: ReportOptions = {}): string[] {
  const out: string[] = [];
  out.push(`device ${r.device}: ${r.description}`);
  out.push(
    r.timestamps
      ? 'GPU timestamps: available (timestamp-query)'
      : r.device === 'webgpu'
        ? 'GPU timestamps: UNAVAILABLE on this adapter (no timestamp-query): host timings only'
        : 'GPU timestamps: not applicable (CPU kernels are timed on the host)',
  );
  out.push(`kernel times: ${r.timingNote}`);
  const plain = r.plainStepMs !== null ? `; unprofiled step ${ms(r.plainStepMs)} ms` : '';
  out.push(
    `profiled ${r.steps} step${r.steps === 1 ? '' : 's'} after ${r.warmup} warmup: ${ms(r.stepMs)} ms/step profiled${plain}`,
  );
  out.push('');
  out.push(...phaseTable(r.phases, r.steps));
  out.push('');
  out.push(...kernelTable(r.kernels, r.timestamps, opts.top ?? 20));
  if (r.device !== 'cpu') {
    const blocked = !r.timestamps && r.submitMs > 0.5 * r.stepMs * r.steps;
    const why = blocked ? ' (submit blocked while the GPU ran: most of the GPU time shows up here)' : '';
    out.push(`queue submits: ${ms(r.submitMs)} ms host time, not in the kernel rows${why}`);
  }
  out.push('');
  if (r.counters) out.push(`counters per step (unprofiled): ${countersLine(r.counters)}`);
  out.push(`counters over the ${r.steps} profiled steps: ${countersLine(r.profiledCounters)}`);
  return out;
}

/** One profiled step as lines (TL_DEBUG=2): its time, phases and top kernels. */
export function formatStep(s: StepProfile, top = 10): string[] {
  const phases = s.phases.map((p) => `${p.name} ${ms(p.totalMs)}`).join(', ');
  return [
    `[profile] step ${s.step}: ${ms(s.ms)} ms (${phases})`,
    ...kernelTable(s.kernels, s.timing === 'gpu-timestamps', top).map((l) => `[profile]   ${l}`),
  ];
}
