// Fused softmax cross-entropy on the CPU: the forward reads each logits row once (max, sum of exps,
// target logit, row sum) and writes the row's loss and logsumexp; the backward writes the logits
// gradient from the saved logsumexp in one pass per row. Rows are computed in doubles.
import { OpError } from '../../core/errors.js';
import type { CrossEntropyAttrs } from '../../ops/opcodes.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { readF64, scratchF64, toStored, writeF64 } from './strided.js';
import { wasmCrossEntropyGrad, wasmCrossEntropyStats, wasmRowsApply } from './wasmrows.js';

/** The error for a target that is neither a class index nor ignoreIndex (the WebGPU kernel reports the same). */
export function targetError(t: number, row: number, c: number, ignoreIndex: number): OpError {
  const range = c > 0 ? `[0, ${c}) (0 to ${c - 1})` : 'empty (no classes)';
  return new OpError(
    'crossEntropy',
    `target ${t} at position [${row}] is out of range for ${c} classes; valid range ${range}, or ignoreIndex ${ignoreIndex}`,
  );
}

/**
 * Inputs: logits (N, C), int32 targets (N), then the aux output lse (N, float32). Writes out[r] =
 * lse_r - (1 - eps) * z[t_r] - eps * mean(z_r), or 0 for an ignored row (whose lse is still written).
 */
export function crossEntropyRows(inputs: readonly Operand[], out: TensorSpec, a: CrossEntropyAttrs): void {
  const x = inputs[0] as TensorSpec;
  const t = inputs[1] as TensorSpec;
  const l = inputs[2] as TensorSpec;
  const [n, c] = x.shape as [number, number];
  const [sr, sc] = x.strides as [number, number];
  const src = view(x.buffer, x.dtype);
  const tv = view(t.buffer, 'int32');
  const lv = view(l.buffer, 'float32');
  const dst = view(out.buffer, out.dtype);
  const ts = t.strides[0]!;
  const eps = a.labelSmoothing;
  if (x.dtype === 'float32' && n > 0 && wasmRowsApply(c, sc)) {
    // targets are checked first so that a bad one throws before any output is written
    for (let r = 0; r < n; r++) {
      const y = tv[t.offset + r * ts]!;
      if (y !== a.ignoreIndex && !(y >= 0 && y < c)) throw targetError(y, r, c, a.ignoreIndex);
    }
    const stats = scratchF64(1, 3 * n);
    if (wasmCrossEntropyStats(n, c, src as Float32Array, x.offset, sr, stats)) {
      for (let r = 0; r < n; r++) {
        const y = tv[t.offset + r * ts]!;
        const lse = stats[3 * r]! + Math.log(stats[3 * r + 1]!);
        lv[l.offset + r] = lse;
        const zy = y === a.ignoreIndex ? 0 : src[x.offset + r * sr + y]!;
        const loss = y === a.ignoreIndex ? 0 : lse - (1 - eps) * zy - (eps > 0 ? (eps * stats[3 * r + 2]!) / c : 0);
        dst[out.offset + r] = toStored(loss, out.dtype);
      }
      return;
    }
  }
  const row = scratchF64(0, c);
  for (let r = 0; r < n; r++) {
    const y = tv[t.offset + r * ts]!;
    const ignored = y === a.ignoreIndex;
    if (!ignored && !(y >= 0 && y < c)) throw targetError(y, r, c, a.ignoreIndex);
    readF64(src, x.dtype, x.offset + r * sr, sc, c, row);
    let max = -Infinity;
    for (let j = 0; j < c; j++) {
      const v = row[j]!;
      if (v > max || v !== v) max = v;
    }
    if (max === -Infinity) max = 0; // all -Inf: the sum is 0 and lse -Inf, as logSoftmax gives
    let s = 0;
    let sz = 0;
    for (let j = 0; j < c; j++) {
      const v = row[j]!;
      s += Math.exp(v - max);
      sz += v;
    }
    const lse = max + Math.log(s);
    lv[l.offset + r] = lse;
    // the smoothing term only when eps > 0: a -Inf logit would otherwise give 0 * -Inf = NaN
    const loss = ignored ? 0 : lse - (1 - eps) * row[y]! - (eps > 0 ? (eps * sz) / c : 0);
    dst[out.offset + r] = toStored(loss, out.dtype);
  }
}

/**
 * Inputs: logits (N, C), targets (N), lse (N), per-row gradient g (N, any stride, 0 for a broadcast
 * scalar). Writes the contiguous out (N, C) = g[r] * (exp(z - lse_r) - (1 - eps) * [c == t_r] - eps / C),
 * 0 on ignored rows.
 */
export function crossEntropyRowsBackward(inputs: readonly Operand[], out: TensorSpec, a: CrossEntropyAttrs): void {
  const x = inputs[0] as TensorSpec;
  const t = inputs[1] as TensorSpec;
  const l = inputs[2] as TensorSpec;
  const g = inputs[3] as TensorSpec;
  const [n, c] = x.shape as [number, number];
  const [sr, sc] = x.strides as [number, number];
  const src = view(x.buffer, x.dtype);
  const tv = view(t.buffer, 'int32');
  const lv = view(l.buffer, 'float32');
  const gv = view(g.buffer, g.dtype);
  const dst = view(out.buffer, out.dtype);
  const eps = a.labelSmoothing;
  const off = eps / c;
  const gs = g.strides[0]!;
  if (x.dtype === 'float32' && out.dtype === 'float32' && n > 0 && wasmRowsApply(c, sc)) {
    const ups = scratchF64(1, n);
    readF64(gv, g.dtype, g.offset, gs, n, ups);
    const o = dst as Float32Array;
    if (wasmCrossEntropyGrad(n, c, src as Float32Array, x.offset, sr, lv.subarray(l.offset), ups, off, o, out.offset)) {
      for (let r = 0; r < n; r++) {
        const y = tv[t.offset + r * t.strides[0]!]!;
        const base = out.offset + r * c;
        if (y === a.ignoreIndex) o.fill(0, base, base + c);
        else if (y >= 0 && y < c) o[base + y] = o[base + y]! - ups[r]! * (1 - eps);
      }
      return;
    }
  }
  const row = scratchF64(0, c);
  for (let r = 0; r < n; r++) {
    const y = tv[t.offset + r * t.strides[0]!]!;
    readF64(gv, g.dtype, g.offset + r * gs, 0, 1, row);
    const up = row[0]!;
    if (y === a.ignoreIndex) {
      row.fill(0, 0, c);
    } else {
      readF64(src, x.dtype, x.offset + r * sr, sc, c, row);
      const lse = lv[l.offset + r]!;
      for (let j = 0; j < c; j++) row[j] = up * (Math.exp(row[j]! - lse) - off);
      if (y >= 0 && y < c) row[y] = row[y]! - up * (1 - eps);
    }
    writeF64(row, 0, c, dst, out.dtype, out.offset + r * c, 1);
  }
}
