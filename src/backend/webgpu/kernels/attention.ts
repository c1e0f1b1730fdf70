// Fused attention for WebGPU, flash-style: a workgroup owns BQ query rows of one batch-head (TPR threads
// per row) and walks the key/value blocks of BK keys, staged through workgroup memory (the K block, then
// the V block in the same tile). Each row keeps a running max m, sum l and its output accumulator (the
// thread's share of the hv columns) in f32 registers; a block rescales them by exp(m_old - m_new). Key
// blocks entirely above the causal limit of the workgroup's last row are never loaded. The scores never
// reach global memory: the output and each row's logsumexp are written once at the end.
// Shapes, strides, scale and the causal offset are uniforms; the pipeline depends only on the dtype, the
// head sizes hs / hv (compiled once per model) and the tiling they imply, so no shape compiles anew.
import { numel } from '../../../core/shape.js';
import { OpError, fmtShape } from '../../../core/errors.js';
import type { DType } from '../../../core/dtype.js';
import type { TensorSpec } from '../../backend.js';
import type { WebGPUKernel, WgslProgram } from '../kernel.js';
import {
  cachedProgram,
  HELPERS_WGSL,
  UniformWords,
  coalesce,
  enables,
  grid,
  load,
  storageDecl,
  store,
  stridedOffsets,
  uF32,
  uI32,
  uU32,
  uniformDecl,
} from './codegen.js';

// Uniform word slots: Tq, Tk, query blocks per batch-head, workgroups, causal offset (i32, clamped to
// [-Tq, Tk]; Tk without a mask), scale (f32), row / column strides of q, k, v, element offsets of q, k, v,
// out, lse, then the (padded) batch shape and the q / k / v batch strides from S_DIMS.
// prettier-ignore
const S_TQ = 0, S_TK = 1, S_QBLK = 2, S_GROUPS = 3, S_CAUSAL = 4, S_SCALE = 5, S_QT = 6, S_QD = 7, S_KT = 8,
  S_KD = 9, S_VT = 10, S_VD = 11, S_QOFF = 12, S_KOFF = 13, S_VOFF = 14, S_OOFF = 15, S_LOFF = 16;
const S_DIMS = 17;

/** Threads per query row: they split the score columns of a block and the output columns. */
const TPR = 4;
/** Batch dims are padded to this rank (size 1, stride 0), so B = 1 and B > 1 share one pipeline. */
const MIN_RANK = 4;
/** Most keys per block. */
const MAX_BK = 32;

/** Everything the program source depends on. */
interface AttentionSpec {
  readonly dtype: DType;
  readonly hs: number;
  readonly hv: number;
  readonly rank: number;
  readonly bq: number;
  readonly bk: number;
}

/**
 * Row stride of the Q and K tiles: hs padded to an odd count, so that the threads of a row (reading
 * different keys) and the rows of a warp (different queries) hit different workgroup-memory banks.
 */
const padded = (n: number): number => n | 1;

/**
 * Query rows (BQ) and keys (BK, a multiple of TPR) per block such that the Q tile (BQ x hs'), the K/V
 * tile (BK x max(hs', hv)) and the scores (BQ x (BK + 1)), all f32, fit `limit` bytes of workgroup memory
 * (hs' = padded hs); null when even one row with TPR keys does not fit.
 */
export function attentionTiles(hs: number, hv: number, limit: number): { bq: number; bk: number } | null {
  const tw = Math.max(padded(hs), hv);
  for (const bq of [16, 8, 4, 2, 1]) {
    const left = limit - bq * (padded(hs) + 1) * 4;
    const bk = Math.min(MAX_BK, Math.floor(left / ((tw + bq) * 4) / TPR) * TPR);
    if (bk >= TPR) return { bq, bk };
  }
  return null;
}

/**
 * The WGSL. Scores that are NaN or +Inf make the row NaN (lse NaN); -Inf scores and masked keys add
 * nothing, and a row left with nothing (l = 0) is NaN with lse -Inf: the causal softmax's semantics.
 * Infinities are tested by their bits, so the result does not depend on the driver's float modes.
 */
function attentionSource(s: AttentionSpec): string {
  const wg = s.bq * TPR;
  const na = Math.ceil(s.hv / TPR);
  const qs = padded(s.hs);
  const tw = Math.max(qs, s.hv);
  const dims = stridedOffsets('bh', s.rank, S_DIMS, [
    { name: 'qb', stridesSlot: S_DIMS + s.rank, offsetSlot: S_QOFF },
    { name: 'kb', stridesSlot: S_DIMS + 2 * s.rank, offsetSlot: S_KOFF },
    { name: 'vb', stridesSlot: S_DIMS + 3 * s.rank, offsetSlot: S_VOFF },
  ]).replace(/\n/g, '\n  ');
  const guard = s.hv % TPR === 0 ? '' : `if (d >= ${s.hv}u) { break; }\n        `;
  return `${enables([s.dtype])}${HELPERS_WGSL}
${storageDecl(0, 'Q', s.dtype, true)}${storageDecl(1, 'K', s.dtype, true)}${storageDecl(2, 'V', s.dtype, true)}${storageDecl(3, 'O', s.dtype, false)}${storageDecl(4, 'L', 'float32', false)}${uniformDecl(5, S_DIMS + 4 * s.rank)}
const HS = ${s.hs}u;
const QS = ${qs}u; // Q / K tile row stride
const SS = ${s.bk + 1}u; // score row stride
const HV = ${s.hv}u;
const BQ = ${s.bq}u;
const BK = ${s.bk}u;
const TPR = ${TPR}u;
const WG = ${wg}u;
const NINF = 0xff800000u;
var<workgroup> qt: array<f32, ${s.bq * qs}>;
var<workgroup> kv: array<f32, ${s.bk * tw}>;
var<workgroup> sc: array<f32, ${s.bq * (s.bk + 1)}>;

// bitcast through a function argument so that infinities and NaN are runtime values
fn bits(b: u32) -> f32 { return bitcast<f32>(b); }

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= ${uU32(S_GROUPS)}) { return; }
  let tq = ${uU32(S_TQ)};
  let tk = ${uU32(S_TK)};
  let qblk = ${uU32(S_QBLK)};
  let bh = g / qblk;
  let q0 = (g % qblk) * BQ;
  ${dims}
  let r = lid / TPR;
  let c = lid % TPR;
  let i = q0 + r;
  let off = ${uI32(S_CAUSAL)};
  // this row keeps keys j < lim; the workgroup loads keys < kend (the limit of its last live row)
  let lim = u32(clamp(i32(i) + off + 1, 0, i32(tk)));
  let kend = u32(clamp(i32(min(q0 + BQ, tq) - 1u) + off + 1, 0, i32(tk)));
  let scale = ${uF32(S_SCALE)};
  let sqt = ${uU32(S_QT)};
  let sqd = ${uU32(S_QD)};
  for (var e = lid; e < BQ * HS; e = e + WG) {
    let qi = q0 + e / HS;
    var x = 0.0;
    if (qi < tq) { x = ${load('Q', 'qb + qi * sqt + (e % HS) * sqd', s.dtype, 'float32')}; }
    qt[(e / HS) * QS + e % HS] = x;
  }
  let skt = ${uU32(S_KT)};
  let skd = ${uU32(S_KD)};
  let svt = ${uU32(S_VT)};
  let svd = ${uU32(S_VD)};
  var m = bits(NINF);
  var l = 0.0;
  var bad = false;
  var acc: array<f32, ${Math.max(na, 1)}>;
  for (var j0 = 0u; j0 < kend; j0 = j0 + BK) {
    workgroupBarrier(); // the Q tile is written; the previous block's V reads are done
    for (var e = lid; e < BK * HS; e = e + WG) {
      let key = j0 + e / HS;
      var x = 0.0;
      if (key < tk) { x = ${load('K', 'kb + key * skt + (e % HS) * skd', s.dtype, 'float32')}; }
      kv[(e / HS) * QS + e % HS] = x;
    }
    workgroupBarrier();
    for (var jj = c; jj < BK; jj = jj + TPR) {
      var dot = 0.0;
      for (var d = 0u; d < HS; d = d + 1u) { dot = dot + qt[r * QS + d] * kv[jj * QS + d]; }
      sc[r * SS + jj] = dot * scale;
    }
    workgroupBarrier(); // the scores are written, the K reads done: the tile takes the V block
    for (var e = lid; e < BK * HV; e = e + WG) {
      let key = j0 + e / HV;
      var x = 0.0;
      if (key < tk) { x = ${load('V', 'vb + key * svt + (e % HV) * svd', s.dtype, 'float32')}; }
      kv[e] = x;
    }
    workgroupBarrier();
    let n = min(BK, select(0u, lim - j0, lim > j0)); // this row's kept keys in the block
    if (n > 0u && !bad) {
      var mb = bits(NINF);
      for (var jj = 0u; jj < n; jj = jj + 1u) {
        let sv = sc[r * SS + jj];
        let sb = bitcast<u32>(sv);
        if ((sb & 0x7fffffffu) > 0x7f800000u || sb == 0x7f800000u) { bad = true; }
        else if (sb != NINF) { mb = max(mb, sv); }
      }
      if (!bad && bitcast<u32>(mb) != NINF) {
        let mn = max(m, mb);
        let alpha = select(exp(m - mn), 0.0, bitcast<u32>(m) == NINF);
        l = l * alpha;
        for (var a = 0u; a < ${na}u; a = a + 1u) { acc[a] = acc[a] * alpha; }
        for (var jj = 0u; jj < n; jj = jj + 1u) {
          let sv = sc[r * SS + jj];
          let p = select(exp(sv - mn), 0.0, bitcast<u32>(sv) == NINF);
          l = l + p;
          for (var a = 0u; a < ${na}u; a = a + 1u) {
            let d = c + a * TPR;
            ${guard}acc[a] = acc[a] + p * kv[jj * HV + d];
          }
        }
        m = mn;
      }
    }
  }
  if (i >= tq) { return; }
  let row = bh * tq + i;
  let nan = bits(0x7fc00000u);
  let empty = l == 0.0;
  let inv = 1.0 / l;
  let ob = ${uU32(S_OOFF)} + row * HV;
  for (var a = 0u; a < ${na}u; a = a + 1u) {
    let d = c + a * TPR;
    ${guard}let y = select(acc[a] * inv, nan, bad || empty);
    ${store('O', 'ob + d', s.dtype, 'y')}
  }
  if (c == 0u) {
    L[${uU32(S_LOFF)} + row] = select(select(m + log(l), bits(NINF), empty), nan, bad);
  }
}
`;
}

function program(s: AttentionSpec): WgslProgram {
  const key = `attention_${s.dtype}_hs${s.hs}_hv${s.hv}_r${s.rank}_${s.bq}x${s.bk}`;
  return cachedProgram(key, () => attentionSource(s));
}

/** attention: inputs q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv) (any strides), then the aux lse (..., Tq). */
export const attention: WebGPUKernel<'attention'> = (inputs, out, attrs, ctx) => {
  const [q, k, v, lse] = inputs as [TensorSpec, TensorSpec, TensorSpec, TensorSpec];
  if (numel(out.shape) === 0) return [];
  const r = q.shape.length;
  const [tq, hs] = [q.shape[r - 2]!, q.shape[r - 1]!];
  const tk = k.shape[r - 2]!;
  const hv = v.shape[r - 1]!;
  const tiles = attentionTiles(hs, hv, ctx.limits.maxComputeWorkgroupStorageSize);
  if (!tiles)
    throw new OpError(
      'attention',
      `head sizes hs ${hs}, hv ${hv} do not fit the adapter's workgroup memory (q ${fmtShape(q.shape)}, v ${fmtShape(v.shape)})`,
    );
  const batch = q.shape.slice(0, -2);
  const lay = coalesce(
    batch,
    [q, k, v].map((t) => t.strides.slice(0, -2)),
  );
  const rank = Math.max(MIN_RANK, lay.shape.length);
  const pad = rank - lay.shape.length;
  const padded = (a: readonly number[], fill: number): number[] => [...Array<number>(pad).fill(fill), ...a];
  const nb = numel(batch);
  const qblk = Math.ceil(tq / tiles.bq);
  const groups = nb * qblk;
  const u = new UniformWords(S_DIMS + 4 * rank);
  const causal = attrs.causal === null ? tk : Math.min(tk, Math.max(-tq, attrs.causal));
  u.u32Array(S_TQ, [tq, tk, qblk, groups]).i32s(S_CAUSAL, causal).f32s(S_SCALE, attrs.scale);
  u.u32Array(S_QT, [q.strides[r - 2]!, q.strides[r - 1]!, k.strides[r - 2]!, k.strides[r - 1]!]);
  u.u32Array(S_VT, [v.strides[r - 2]!, v.strides[r - 1]!, q.offset, k.offset, v.offset, out.offset, lse.offset]);
  u.u32Array(S_DIMS, padded(lay.shape, 1));
  lay.strides.forEach((st, o) => u.u32Array(S_DIMS + (o + 1) * rank, padded(st, 0)));
  return [
    {
      program: program({ dtype: q.dtype, hs, hv, rank, ...tiles }),
      buffers: [
        { buffer: q.buffer, readOnly: true },
        { buffer: k.buffer, readOnly: true },
        { buffer: v.buffer, readOnly: true },
        { buffer: out.buffer, readOnly: false },
        { buffer: lse.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: grid(groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

/** The attention entry of the kernel table. */
export const attentionKernels = { attention };
