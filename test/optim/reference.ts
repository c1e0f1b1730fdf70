// Float64 reference optimizers written from PyTorch's documented algorithms (torch.optim.SGD, Adam,
// AdamW), element by element, plus the test helpers that feed the same float32 data to the library.
import type { Tensor } from '../../src/tensor/index.js';
import { keep, noGrad, tensor } from '../../src/tensor/index.js';
import type { Optimizer } from '../../src/optim/index.js';
import { assertClose } from '../helpers/assert.js';
import type { Rng } from '../helpers/random.js';

/** SGD hyperparameters, as torch.optim.SGD names them. */
export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/** Adam/AdamW hyperparameters; `decoupled` selects AdamW's weight decay. */
export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  decoupled: boolean;
}

/** One parameter of the reference: values, step count and state, all float64. */
export interface RefParam {
  theta: Float64Array;
  t: number;
  state: Record<string, Float64Array>;
}

/** A fresh reference parameter holding `values`. */
export function refParam(values: ArrayLike<number>): RefParam {
  return { theta: Float64Array.from(values), t: 0, state: {} };
}

/**
 * One torch.optim.SGD step (the docs' algorithm; maximize negates the gradient first, as the
 * implementation does since torch 1.13):
 *   g ← ±∇ + λθ;  b ← (t = 1 ? g : μb + (1-τ)g);  g ← nesterov ? g + μb : b;  θ ← θ - γg
 */
export function sgdRefStep(p: RefParam, grad: ArrayLike<number>, h: SgdHyper): void {
  p.t++;
  const n = p.theta.length;
  const b = (p.state.momentumBuffer ??= new Float64Array(n));
  for (let i = 0; i < n; i++) {
    let g = h.maximize ? -grad[i]! : grad[i]!;
    if (h.weightDecay !== 0) g += h.weightDecay * p.theta[i]!;
    if (h.momentum !== 0) {
      b[i] = p.t === 1 ? g : h.momentum * b[i]! + (1 - h.dampening) * g;
      g = h.nesterov ? g + h.momentum * b[i]! : b[i]!;
    }
    p.theta[i] = p.theta[i]! - h.lr * g;
  }
  if (h.momentum === 0) delete p.state.momentumBuffer;
}

/**
 * One torch.optim.Adam / AdamW step (the docs' algorithm):
 *   g ← ±∇;  Adam: g ← g + λθ;  AdamW: θ ← θ - γλθ
 *   m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  m̂ ← m / (1-β1^t)
 *   v̂ ← (amsgrad ? (vmax ← max(vmax, v)) : v) / (1-β2^t)
 *   θ ← θ - γ m̂ / (√v̂ + ε)
 */
export function adamRefStep(p: RefParam, grad: ArrayLike<number>, h: AdamHyper): void {
  const t = ++p.t;
  const n = p.theta.length;
  const m = (p.state.expAvg ??= new Float64Array(n));
  const v = (p.state.expAvgSq ??= new Float64Array(n));
  const vmax = h.amsgrad ? (p.state.maxExpAvgSq ??= new Float64Array(n)) : null;
  for (let i = 0; i < n; i++) {
    let g = h.maximize ? -grad[i]! : grad[i]!;
    let th = p.theta[i]!;
    if (h.weightDecay !== 0) {
      if (h.decoupled) th -= h.lr * h.weightDecay * th;
      else g += h.weightDecay * th;
    }
    m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
    const mHat = m[i]! / (1 - h.beta1 ** t);
    let vv = v[i]!;
    if (vmax) vv = vmax[i] = Math.max(vmax[i]!, v[i]!);
    const vHat = vv / (1 - h.beta2 ** t);
    p.theta[i] = th - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
  }
}

/** `n` normal samples rounded to float32, so the library and the reference start from equal data. */
export function f32Normals(rng: Rng, n: number, std = 1): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround(rng.normal(0, std)));
}

/** A float32 leaf parameter (requiresGrad) holding `values`. */
export function param(values: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float32Array.from(values), { shape, requiresGrad: true });
}

/** Sets `p.grad` to `values` (copied into the existing gradient buffer when there is one), or clears it with null. */
export function setGrad(p: Tensor, values: ArrayLike<number> | null): void {
  if (values === null) {
    p.grad?.dispose();
    p.grad = null;
    return;
  }
  const src = tensor(Float32Array.from(values), { shape: p.shape });
  if (p.grad) {
    const g = p.grad;
    noGrad(() => g.copy_(src));
    src.dispose();
  } else p.grad = keep(src); // like backward: a gradient outlives the tidy it was created in
}

/** The values of a tensor as float64. */
export async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toArray());
}

/** Shapes of the parameters the update-rule tests optimize (a matrix, a vector, a 3-d tensor). */
export const TEST_SHAPES: readonly (readonly number[])[] = [[3, 4], [5], [2, 1, 3]];

/**
 * Runs `opt` (built by `make` over fresh random parameters) and the float64 reference `refStep`
 * side by side for `steps` steps with fresh random float32 gradients, skipping parameter 1's
 * gradient at step 3 (it must then keep its value and state). After every step, every element of
 * every parameter and of every state tensor named in `stateNames` must match within float32 tolerance.
 */
export async function checkAgainstReference(opts: {
  rng: Rng;
  what: string;
  make: (params: Tensor[]) => Optimizer;
  refStep: (p: RefParam, grad: ArrayLike<number>) => void;
  stateNames: readonly string[];
  steps?: number;
  gradStd?: number;
}): Promise<void> {
  const { rng, what, steps = 6, gradStd = 1 } = opts;
  const init = TEST_SHAPES.map((s) =>
    f32Normals(
      rng,
      s.reduce((a, b) => a * b, 1),
    ),
  );
  const params = init.map((v, i) => param(v, TEST_SHAPES[i]!));
  const refs = init.map((v) => refParam(v));
  const opt = opts.make(params);
  for (let step = 1; step <= steps; step++) {
    for (let i = 0; i < params.length; i++) {
      if (i === 1 && step === 3) {
        setGrad(params[i]!, null);
        continue;
      }
      const g = f32Normals(rng, refs[i]!.theta.length, gradStd);
      setGrad(params[i]!, g);
      opts.refStep(refs[i]!, g);
    }
    opt.step();
    const sd = opt.stateDict();
    for (let i = 0; i < params.length; i++) {
      const at = `${what}, param ${i} ${fmt(TEST_SHAPES[i]!)}, after step ${step}`;
      assertClose(await values(params[i]!), refs[i]!.theta, { dtype: 'float32', what: at, shape: TEST_SHAPES[i]! });
      const st = sd.state[i];
      if (!st) throw new Error(`${at}: no optimizer state`);
      if (st.step !== refs[i]!.t) throw new Error(`${at}: step count ${st.step}, expected ${refs[i]!.t}`);
      for (const name of opts.stateNames) {
        const ref = refs[i]!.state[name];
        const mine = st.tensors[name];
        if (!ref || !mine) throw new Error(`${at}: state '${name}' is ${mine ? 'unexpected' : 'missing'}`);
        assertClose(await values(mine), ref, {
          dtype: 'float32',
          what: `${at}, state ${name}`,
          shape: TEST_SHAPES[i]!,
        });
      }
      const extra = Object.keys(st.tensors).filter((k) => !opts.stateNames.includes(k));
      if (extra.length) throw new Error(`${at}: unexpected state ${extra.join(', ')}`);
    }
  }
  opt.dispose();
  for (const p of params) p.dispose();
}

function fmt(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}
