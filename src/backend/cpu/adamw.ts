// The CPU adamw kernel: one Adam/AdamW step over flat float32 buffers, in place (the parameter, the
// moments, and the AMSGrad maximum are all written), computed in float64 and stored as float32; from
// 64K elements on, the WASM SIMD kernel (f32 lanes, wasmgemm.ts) does it instead.
import { numel } from '../../core/shape.js';
import type { AdamWAttrs } from '../../ops/opcodes.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { wasmAdamw } from './wasmgemm.js';

/**
 * adamw: for every element i of the contiguous float32 operands (inputs g, m, v[, vmax]; output p),
 *
 *     g = ±g[i] + (decoupled ? 0 : λ·p[i]);   θ = p[i]·(decoupled ? 1 - lr·λ : 1)
 *     m[i] = β1·m[i] + (1 - β1)·g;   v[i] = β2·v[i] + (1 - β2)·g²;   u = amsgrad ? (vmax[i] = max(vmax[i], v[i])) : v[i]
 *     p[i] = θ - (lr / (1 - β1^t)) · m[i] / (sqrt(u) / sqrt(1 - β2^t) + eps)     (θ itself when lr = 0)
 */
export function adamw(inputs: readonly Operand[], out: TensorSpec, a: AdamWAttrs): void {
  const [gs, ms, vs, xs] = inputs as readonly TensorSpec[];
  const n = numel(out.shape);
  const p = view(out.buffer, 'float32');
  const g = view(gs!.buffer, 'float32');
  const m = view(ms!.buffer, 'float32');
  const v = view(vs!.buffer, 'float32');
  const vmax = a.amsgrad ? view(xs!.buffer, 'float32') : null;
  const [po, go, mo, vo, xo] = [out.offset, gs!.offset, ms!.offset, vs!.offset, xs?.offset ?? 0];
  const { beta1: b1, beta2: b2, eps, lr } = a;
  const stepSize = lr / (1 - b1 ** a.step);
  const rbc2 = 1 / Math.sqrt(1 - b2 ** a.step);
  const decay = a.decoupled ? 1 - lr * a.weightDecay : 1;
  const l2 = a.decoupled ? 0 : a.weightDecay;
  const sign = a.maximize ? -1 : 1;
  const offs = [po, go, mo, vo, xo] as const;
  const consts = [b1, 1 - b1, b2, 1 - b2, eps, stepSize, rbc2, decay, l2, sign];
  // lr = 0 stays here: the WASM kernel has no "θ itself" case (0 · m / 0 would give NaN when eps = 0)
  if (lr !== 0 && wasmAdamw({ n, p, g, m, v, x: vmax, offs, consts })) return;
  for (let i = 0; i < n; i++) {
    const th0 = p[po + i]!;
    const gi = sign * g[go + i]! + l2 * th0;
    const mi = b1 * m[mo + i]! + (1 - b1) * gi;
    const vi = b2 * v[vo + i]! + (1 - b2) * gi * gi;
    m[mo + i] = mi;
    v[vo + i] = vi;
    let u = vi;
    if (vmax) u = vmax[xo + i] = Math.max(vmax[xo + i]!, vi);
    const th = th0 * decay;
    p[po + i] = lr === 0 ? th : th - (stepSize * mi) / (Math.sqrt(u) * rbc2 + eps);
  }
}
