// Helpers of the autograd suite: moving data between the float64 oracle (ND) and library tensors,
// input generators with the domains gradient checks need (positive, away from zero, well-separated
// values), a walk over the recorded graph, backend memory snapshots, and `runGradCase`, the
// finite-difference check that every row of the op table in grad-ops.test.ts goes through.
import assert from 'node:assert/strict';
import {
  getBackend,
  liveTensors,
  tensor,
  tidy,
  type DType,
  type DeviceName,
  type Node,
  type Tensor,
} from '../../src/index.js';
import type { OpCode } from '../../src/ops/opcodes.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, randomPermutation, testSeed, type Rng } from '../helpers/random.js';

/**
 * Gradient tolerance, documented once: the library computes gradients in float32 through a handful
 * of ops (each ~6e-8 relative rounding, reductions over <= ~100 terms), while the oracle is a float64
 * central difference (truncation error ~eps^2 = 1e-12, cancellation ~1e-10). A correct float32
 * gradient is within ~1e-5 relative; a wrong rule is off by O(1). rtol 1e-3 / atol 1e-4 leaves
 * a wide margin for float32 and for the single float16 rounding of the cast round-trip case
 * (2^-11 ~ 4.9e-4 relative), while still failing any real rule error.
 */
export const GRAD_TOL = { rtol: 1e-3, atol: 1e-4 } as const;

/** Forward-value tolerance against the float64 reference (float32 results through a few ops). */
export const FWD_TOL = { rtol: 1e-4, atol: 1e-5 } as const;

/** A library tensor holding an ND's values (rounded to `dtype`, float32 by default). */
export function fromND(a: O.ND, device: DeviceName, opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
  return tensor(a.data, {
    shape: a.shape,
    device,
    dtype: opts.dtype ?? 'float32',
    requiresGrad: opts.requiresGrad ?? false,
  });
}

/** A tensor's values as a float64 ND (waits for the device). */
export async function toND(t: Tensor): Promise<O.ND> {
  return O.nd(t.shape, await t.toArray());
}

/** Uniform values in [lo, hi) (float32-representable). */
export function uniform(rng: Rng, shape: readonly number[], lo = -1, hi = 1): O.ND {
  return randomND(rng, shape, { low: lo, high: hi });
}

/** Values with |x| in [lo, hi) and a random sign: for abs/relu/div where 0 is a kink or a pole. */
export function awayFromZero(rng: Rng, shape: readonly number[], lo = 0.2, hi = 1.5): O.ND {
  const a = uniform(rng, shape, lo, hi);
  for (let i = 0; i < a.data.length; i++) if (rng.bool()) a.data[i] = -a.data[i]!;
  return a;
}

/**
 * Values on a coarse grid: (2k + parity) * 0.05 + noise in [0, 0.01), k in [-12, 12). Two arrays of
 * different parity are never closer than 0.04 anywhere, so maximum/minimum/clamp stay far from ties
 * under finite differences; scalars on the even grid (0.3, -0.3, ...) never tie with odd-parity values.
 */
export function grid(rng: Rng, shape: readonly number[], parity: 0 | 1): O.ND {
  const out = O.nd(shape);
  for (let i = 0; i < out.data.length; i++)
    out.data[i] = Math.fround((2 * rng.int(-12, 12) + parity) * 0.05 + rng.uniform(0, 0.01));
  return out;
}

/** Pairwise distinct values in [-1, 1) separated by at least 1/n (for max/min without ties). */
export function distinct(rng: Rng, shape: readonly number[]): O.ND {
  const n = O.numel(shape);
  const perm = randomPermutation(rng, n);
  const out = O.nd(shape);
  for (let i = 0; i < n; i++) out.data[i] = Math.fround(-1 + (2 * perm[i]! + rng.uniform(0, 0.5)) / n);
  return out;
}

/** Integer indices in [0, high) of `shape` that repeat at least one value when there are more than `high`. */
export function indices(rng: Rng, shape: readonly number[], high: number): O.ND {
  const out = O.nd(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = rng.int(0, high);
  if (out.data.length >= 2) out.data[1] = out.data[0]!; // a repeat: gradients must accumulate, not overwrite
  return out;
}

/** The set of op codes recorded in the graph that produced `t` (every node reachable from it). */
export function recordedOps(t: Tensor): Set<OpCode> {
  const ops = new Set<OpCode>();
  const seen = new Set<Node>();
  const stack: Node[] = t.gradFn ? [t.gradFn] : [];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    ops.add(n.op);
    for (const e of n.next) if (e && 'node' in e) stack.push(e.node);
  }
  return ops;
}

/** Live tensor handles and the backend's live buffers/bytes at one moment. */
export interface MemSnapshot {
  tensors: number;
  buffers: number;
  bytes: number;
}

/** Snapshot of the live counters of `device`. */
export function mem(device: DeviceName): MemSnapshot {
  const s = getBackend(device).stats();
  return { tensors: liveTensors(), buffers: s.liveBuffers, bytes: s.liveBytes };
}

/** Asserts the live counters equal `base` (tensor handles, buffers, bytes). */
export function assertMem(device: DeviceName, base: MemSnapshot, what: string): void {
  const now = mem(device);
  assert.deepEqual(now, base, `${what}: live counters ${JSON.stringify(now)}, expected ${JSON.stringify(base)}`);
}

/** What a gradient case builds from its random stream. */
export interface GradSetup {
  /** The inputs the gradient is taken with respect to (each becomes a leaf with requiresGrad). */
  inputs: O.ND[];
  /** Dtype of each leaf (default float32). */
  dtypes?: DType[];
  /** The library computation; runs inside tidy, so intermediates are disposed right after it. */
  forward: (xs: Tensor[], device: DeviceName) => Tensor;
  /** The float64 reference of the same computation (for the forward value and, by default, the gradient). */
  reference: (xs: O.ND[]) => O.ND;
  /** The function whose finite differences give the expected gradient, when not `reference` (casts). */
  gradReference?: (xs: O.ND[]) => O.ND;
  /** Forward tolerance dtype (default float32). */
  forwardDType?: 'float32' | 'float16';
  rtol?: number;
  atol?: number;
}

/** A row of the op table: a name, the ops its graph must record, and the setup. */
export interface GradCase {
  name: string;
  /** Ops this case exercises; the test checks each one really is in the recorded graph. */
  ops: readonly OpCode[];
  /** Dtypes the case needs besides float32 (on a backend without them it is skipped, with the reason). */
  needs?: readonly DType[];
  setup: (rng: Rng) => GradSetup;
}

/**
 * Runs one gradient case: leaves from the inputs, forward (in tidy), checks the recorded ops and the
 * forward value, backward with a random upstream gradient, then compares every element of every
 * leaf's gradient with the central finite differences of the float64 reference contracted with the
 * same upstream. Finally everything is disposed and the live counters must be back where they were.
 */
export async function runGradCase(device: DeviceName, c: GradCase, rng: Rng): Promise<void> {
  const seed = testSeed();
  const s = c.setup(rng);
  const base = mem(device);
  const leaves = s.inputs.map((a, i) => fromND(a, device, { dtype: s.dtypes?.[i] ?? 'float32', requiresGrad: true }));
  // the oracle sees exactly the values the library holds (float16 leaves are rounded)
  const xs = s.inputs.map((a, i) => (s.dtypes?.[i] === 'float16' ? O.roundND(a, 'float16') : a));
  const y = tidy(() => s.forward(leaves, device));
  const ops = recordedOps(y);
  for (const op of c.ops)
    assert.ok(ops.has(op), `${c.name}: expected op '${op}' in the recorded graph, got {${[...ops].join(', ')}}`);

  const want = s.reference(xs);
  assert.deepEqual(y.shape, want.shape, `${c.name}: forward shape`);
  const fwdTol = s.forwardDType === 'float16' ? { rtol: 1e-3, atol: 1e-3 } : FWD_TOL;
  assertClose(await y.toArray(), want, {
    dtype: s.forwardDType ?? 'float32',
    ...fwdTol,
    what: `${c.name} forward`,
    seed,
  });

  const upstream = uniform(rng, y.shape);
  const g = fromND(upstream, device);
  y.backward(g);
  const grads = leaves.map((l, i) => {
    assert.ok(l.grad, `${c.name}: input ${i} got no gradient`);
    assert.deepEqual(l.grad.shape, l.shape, `${c.name}: gradient shape of input ${i}`);
    assert.equal(l.grad.dtype, l.dtype, `${c.name}: gradient dtype of input ${i}`);
    return l.grad;
  });
  const actual = await Promise.all(grads.map((t) => t.toArray()));
  assertGradClose(actual, s.gradReference ?? s.reference, xs, upstream, {
    rtol: s.rtol ?? GRAD_TOL.rtol,
    atol: s.atol ?? GRAD_TOL.atol,
    what: `${c.name} gradient`,
    seed,
  });

  g.dispose();
  y.dispose();
  for (const l of leaves) l.dispose();
  assertMem(device, base, `${c.name}: after disposing inputs, output and gradients`);
}

/** Runs `fn` and returns the error it throws (fails when it does not throw). */
export function thrown(fn: () => unknown, what: string): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `${what}: threw a non-Error ${String(e)}`);
    return e;
  }
  assert.fail(`${what}: expected an error, none was thrown`);
}
