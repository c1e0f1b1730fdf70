// The per-run counter deltas every `loom bench` suite reports (the JSON `counters` field).
import type { BackendStats } from '../backend/backend.js';
import type { BenchCounters } from './benchsuites.js';

/** The backend counters' growth from `a` to `b`, per run over `runs` runs. */
export function counterDelta(a: BackendStats, b: BackendStats, runs: number): BenchCounters {
  const d = (x: number, y: number): number => (y - x) / runs;
  return {
    buffersCreated: d(a.buffersCreated, b.buffersCreated),
    submits: d(a.submits, b.submits),
    dispatches: d(a.dispatches, b.dispatches),
    compiles: d(a.compiles, b.compiles),
    bytesUp: d(a.bytesUploaded, b.bytesUploaded),
    bytesDown: d(a.bytesDownloaded, b.bytesDownloaded),
  };
}
