// Reverse-mode differentiation: walks the recorded graph from a tensor back to the leaves in
// dependency order, applies each op's gradient rule and accumulates into leaf `.grad` in place.
import { AutogradError, fmtShape } from '../core/errors.js';
import type { Tensor } from '../tensor/index.js';
import type { AttrMap } from '../ops/opcodes.js';
import {
  binary,
  cast,
  indexAddInplace,
  keep,
  noGrad,
  onesLike,
  tidy,
  transpose,
  zeros,
  type Node,
} from '../tensor/index.js';
import { matmulAccumulate_ } from '../tensor/linalg.js';
import { GRAD_RULES, materialize, type DeferredGrad, type InputGrad } from './rules.js';

/** Options of `backward`. */
export interface BackwardOptions {
  /** Keep the graph's saved tensors so that backward can run through it again. */
  retainGraph?: boolean;
}

/** Nodes reachable from `root`, with how many reachable nodes feed a gradient into each. */
function dependencies(root: Node): Map<Node, number> {
  const deps = new Map<Node, number>([[root, 0]]);
  const stack = [root];
  while (stack.length) {
    const n = stack.pop()!;
    for (const e of n.next) {
      if (!e || !('node' in e)) continue;
      const seen = deps.has(e.node);
      deps.set(e.node, (deps.get(e.node) ?? 0) + 1);
      if (!seen) stack.push(e.node);
    }
  }
  return deps;
}

/**
 * Bookkeeping of gradient tensors during one pass: how many pending slots hold each, and which ones
 * a leaf took as its `.grad`, so that every intermediate is freed as soon as nothing needs it.
 */
class Ledger {
  private readonly owned = new Set<Tensor>();
  private readonly holds = new Map<Tensor, number>();

  hold(t: Tensor): void {
    this.holds.set(t, (this.holds.get(t) ?? 0) + 1);
  }

  /** Drops one hold; frees the tensor when none is left and no leaf owns it. */
  drop(t: Tensor): void {
    const n = (this.holds.get(t) ?? 0) - 1;
    if (n > 0) this.holds.set(t, n);
    else this.freeIfUnused(t);
  }

  freeIfUnused(t: Tensor): void {
    if ((this.holds.get(t) ?? 0) > 0 || this.owned.has(t)) return;
    this.holds.delete(t);
    t.dispose();
  }

  /**
   * Accumulates a deferred gradient (an index-add or a product) into `leaf.grad` in place when no hook must
   * see the gradient and the buffer has its dtype and is contiguous (the steady state of training, where
   * grads are zeroed in place); a leaf without a grad gets a zeroed one first (0 + v is v exactly), so the
   * first step runs the kernels of every later one and the device compiles them all in step one. Else the
   * gradient is built and goes the usual way.
   */
  toLeafDeferred(leaf: Tensor, g: DeferredGrad): void {
    const dtype = g.kind === 'matmul' ? g.x.dtype : g.src.dtype;
    const inPlace = !leaf.disposed && leaf.leafHooks.length === 0;
    if (inPlace && !leaf.grad && leaf.dtype === dtype) {
      const z = zeros(leaf.shape, { dtype, device: leaf.device });
      this.owned.add(z);
      leaf.grad = keep(z);
    }
    const grad = leaf.grad;
    if (inPlace && grad && grad.dtype === dtype && grad.isContiguous) {
      accumulateInPlace(grad, g);
      return;
    }
    const t = tidy(() => castTo(materialize(g), leaf.dtype));
    this.toLeaf(leaf, t, true);
    this.freeIfUnused(t); // unless the leaf took it as its grad
  }

  /** Accumulates `g` into `leaf.grad`; takes `g` itself only when `exclusive` (referenced nowhere else). */
  toLeaf(leaf: Tensor, g: Tensor, exclusive: boolean): void {
    if (leaf.disposed)
      throw new AutogradError(`backward: leaf tensor #${leaf.id} (shape ${fmtShape(leaf.shape)}) was disposed`);
    for (const h of leaf.leafHooks) g = h(g) ?? g;
    if (leaf.grad) {
      leaf.grad.add_(g); // in place: repeated accumulation allocates nothing
      return;
    }
    const ownable = exclusive && g.isContiguous && g.offset === 0 && g.storage.refs === 1 && !this.holds.has(g);
    const mine = ownable ? g : g.clone();
    this.owned.add(mine);
    leaf.grad = keep(mine);
  }
}

/**
 * Computes the gradient of `root` with respect to every leaf that requires grad, accumulating into
 * their `.grad`. `grad` is the gradient of some scalar with respect to `root` (default: 1 for a
 * one-element root). Unless `retainGraph`, the saved tensors are freed as the pass goes.
 */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  root.assertLive('backward');
  if (!root.requiresGrad)
    throw new AutogradError(
      'backward: the tensor does not require grad (no input of the computation had requiresGrad set)',
    );
  if (!grad && root.size !== 1)
    throw new AutogradError(
      `backward: an implicit gradient needs a one-element tensor, got shape ${fmtShape(root.shape)}; pass the gradient explicitly`,
    );
  if (grad && (grad.ndim !== root.ndim || grad.shape.some((d, i) => d !== root.shape[i]))) {
    throw new AutogradError(
      `backward: gradient shape ${fmtShape(grad.shape)} does not match the tensor's shape ${fmtShape(root.shape)}`,
    );
  }
  noGrad(() =>
    tidy(() => {
      const ledger = new Ledger();
      const g0 = grad ? cast(grad, root.dtype).clone() : onesLike(root);
      if (root.gradFn) run(root.gradFn, g0, ledger, opts.retainGraph ?? false);
      else ledger.toLeaf(root, g0, true);
    }),
  );
}

function run(root: Node, g0: Tensor, ledger: Ledger, retain: boolean): void {
  const deps = dependencies(root); // counts down as gradients arrive
  const fanIn: ReadonlyMap<Node, number> = new Map(deps); // stays: how many gradients each node gets
  const grads = new Map<Node, Tensor>([[root, g0]]);
  ledger.hold(g0);
  const ready: Node[] = [root];
  while (ready.length) {
    const node = ready.pop()!;
    const gIn = grads.get(node)!;
    grads.delete(node);
    const rule = GRAD_RULES[node.op];
    if (!rule) throw new Error(`internal: ${node.op} was recorded but has no gradient rule`);
    // each rule runs in its own scope: its temporaries are freed at once, its results survive
    const inGrads = tidy(() => {
      let g = gIn;
      for (const h of node.hooks) g = h(g) ?? g;
      return rule({ node, grad: g, needs: (i) => node.next[i] != null }).map((gi, i): InputGrad => {
        const meta = node.inputs[i];
        if (!gi || !meta || isDeferred(gi)) return gi;
        return castTo(gi, meta.dtype);
      });
    });
    node.next.forEach((edge, i) => {
      if (!edge) return;
      const raw = inGrads[i];
      if (!raw) throw new Error(`internal: rule of ${node.op} gave no gradient for input ${i}`);
      const route = isDeferred(raw) ? leafRoute(edge, raw, fanIn) : null;
      if (route) {
        ledger.toLeafDeferred(route.leaf, route.grad);
        if (route.view) retire(route.view, deps, retain);
        return;
      }
      const gi = isDeferred(raw) ? tidy(() => castTo(materialize(raw), node.inputs[i]!.dtype)) : raw;
      if ('leaf' in edge) {
        const exclusive = gi !== gIn && inGrads.indexOf(gi) === inGrads.lastIndexOf(gi);
        ledger.toLeaf(edge.leaf, gi, exclusive);
        if (gi !== raw) ledger.freeIfUnused(gi); // a materialized gradient added into an existing grad
        return;
      }
      const prev = grads.get(edge.node);
      const next = prev ? binary('add', prev, gi) : gi;
      grads.set(edge.node, next);
      ledger.hold(next);
      if (prev) ledger.drop(prev);
      const left = deps.get(edge.node)! - 1;
      deps.set(edge.node, left);
      if (left === 0) ready.push(edge.node);
    });
    ledger.drop(gIn);
    for (const gi of inGrads) if (gi && !isDeferred(gi)) ledger.freeIfUnused(gi);
    releaseProducts(inGrads);
    if (!retain) node.freeSaved();
  }
}

type Edge = NonNullable<Node['next'][number]>;

/**
 * Where a deferred gradient accumulates in place: the leaf its edge reaches, or, for a product, the leaf
 * behind a transpose view (a Linear's weight^T) that only this edge feeds: the product is transposed
 * instead and the view node retired. Null: the gradient is materialized.
 */
function leafRoute(
  edge: Edge,
  g: DeferredGrad,
  fanIn: ReadonlyMap<Node, number>,
): { leaf: Tensor; grad: DeferredGrad; view: Node | null } | null {
  if ('leaf' in edge) return { leaf: edge.leaf, grad: g, view: null };
  if (g.kind !== 'matmul') return null;
  const leaf = leafBehindLoneTranspose(edge.node, fanIn);
  return leaf ? { leaf, grad: { ...g, transposed: !g.transposed }, view: edge.node } : null;
}

/**
 * The leaf behind `n` when `n` is a 2-D transpose of a leaf with no hooks whose output feeds exactly one
 * gradient (its rule is a transpose), else null.
 */
function leafBehindLoneTranspose(n: Node, fanIn: ReadonlyMap<Node, number>): Tensor | null {
  if (n.op !== 'permute' || n.hooks.length > 0 || fanIn.get(n) !== 1 || n.next.length !== 1) return null;
  const { dims } = n.attrs as AttrMap['permute'];
  const e = n.next[0];
  return dims.length === 2 && dims[0] === 1 && dims[1] === 0 && e != null && 'leaf' in e ? e.leaf : null;
}

/** A node whose only gradient went around it: nothing is pending on it; its saved tensors go as if it ran. */
function retire(n: Node, deps: Map<Node, number>, retain: boolean): void {
  deps.set(n, 0);
  if (!retain) n.freeSaved();
}

/** Accumulates a deferred gradient into `grad` (contiguous, the gradient's dtype) in place. */
function accumulateInPlace(grad: Tensor, g: DeferredGrad): void {
  if (g.kind === 'indexAdd') {
    indexAddInplace(grad, g.dim, g.index, g.src);
    return;
  }
  // (x @ y)^T = y^T @ x^T: both transposes are views
  tidy(() =>
    g.transposed ? matmulAccumulate_(grad, transpose(g.y), transpose(g.x)) : matmulAccumulate_(grad, g.x, g.y),
  );
}

/** Frees the operand views a node's deferred products own (see MatmulGrad) once every edge was served. */
function releaseProducts(inGrads: readonly InputGrad[]): void {
  for (const g of inGrads) {
    if (!g || !isDeferred(g) || g.kind !== 'matmul') continue;
    g.x.dispose();
    g.y.dispose();
  }
}

/** The gradient of `root` accumulated into `t.grad` for a non-leaf tensor as well (like retain_grad). */
export function retainGrad(t: Tensor): void {
  if (!t.gradFn) return; // leaves keep their grad anyway
  t.gradFn.hooks.push((g) => {
    if (t.grad) t.grad.add_(g);
    else t.grad = keep(g.clone());
  });
}

function isDeferred(g: InputGrad): g is DeferredGrad {
  return g !== null && typeof (g as DeferredGrad).kind === 'string';
}

function castTo(t: Tensor, dtype: Tensor['dtype']): Tensor {
  return t.dtype === dtype ? t : cast(t, dtype);
}
