// Flat buffers behind a parameter group, for optimizers with a fused kernel (Adam, AdamW): the group's
// parameters, their gradients and their moments each live in one buffer per chunk, and each parameter,
// gradient and per-parameter state tensor is a view of its slice. A step is then one kernel per chunk.
import { keep, moveInto, packTensors, tidy, zeros, type Tensor } from '../tensor/index.js';
import type { ParamState } from './optimizer.js';

/**
 * Most elements in one chunk: 2^25 float32 = 128 MiB, WebGPU's guaranteed maxStorageBufferBindingSize,
 * so that every chunk can be bound. A larger group is split (one kernel per chunk); a single parameter
 * larger than this gets a chunk of its own (it was one buffer already).
 */
export const MAX_CHUNK_ELEMENTS = 2 ** 25;

/** Names of the per-parameter state tensors a fused step keeps, in kernel input order. */
export type MomentName = 'expAvg' | 'expAvgSq' | 'maxExpAvgSq';

/** A run of consecutive parameters of a group packed into one buffer (and its twins for grads and moments). */
export class Chunk {
  /** 1-D handle over the packed parameters. */
  readonly params: Tensor;
  /** 1-D gradient buffer (null until the first fused step). */
  grads: Tensor | null = null;
  /** The tensors that were moved into the gradient slots (a parameter's `.grad` is its slot while it is this). */
  readonly gradOf: (Tensor | null)[];
  /** Flat moment buffers (allocated on the first fused step that needs them). */
  readonly moments: Record<MomentName, Tensor | null> = { expAvg: null, expAvgSq: null, maxExpAvgSq: null };
  private readonly views: Record<MomentName, (Tensor | null)[]>;

  constructor(
    /** The parameters, in order. */
    readonly members: readonly Tensor[],
    flat: Tensor,
  ) {
    this.params = keep(flat);
    this.gradOf = members.map(() => null);
    const none = (): null[] => members.map(() => null);
    this.views = { expAvg: none(), expAvgSq: none(), maxExpAvgSq: none() };
  }

  /** Element offset of member `j` in the chunk's buffers. */
  offset(j: number): number {
    return this.members[j]!.offset - this.params.offset;
  }

  /** Live flat buffer for moment `name` (zeros when new). */
  moment(name: MomentName): Tensor {
    const t = this.moments[name];
    if (t && !t.disposed) return t;
    return (this.moments[name] = keep(zeros([this.params.size], { device: this.params.device })));
  }

  /** Live view of moment `name` for member `j`, shaped like it (created, and kept, on demand). */
  view(name: MomentName, j: number): Tensor {
    const v = this.views[name][j];
    if (v && !v.disposed) return v;
    const flat = this.moment(name);
    const p = this.members[j]!;
    const at = this.offset(j);
    const fresh = keep(tidy(() => flat.slice(0, at, at + p.size).reshape(p.shape)));
    return (this.views[name][j] = fresh);
  }

  /**
   * Makes every member's `.grad` its slot of the gradient buffer: a gradient that is not yet is moved
   * in (needs to be the only handle on its storage). False when one cannot be moved.
   */
  adoptGrads(): boolean {
    const grads = this.members.map((p) => p.grad!);
    if (!this.grads || this.grads.disposed) {
      // first use, or after dispose: gradients already back to back are taken as they are
      const flat = packTensors(grads);
      if (!flat) return false;
      this.grads = keep(flat);
      grads.forEach((g, j) => (this.gradOf[j] = g));
      return true;
    }
    for (let j = 0; j < grads.length; j++) {
      const g = grads[j]!;
      if (g === this.gradOf[j]) continue;
      if (g.storage.refs !== 1) return false;
      moveInto(g, this.grads, this.offset(j));
      this.gradOf[j] = g;
    }
    return true;
  }

  /** True when every member's `.grad` already is its slot. */
  gradsInPlace(): boolean {
    if (!this.grads || this.grads.disposed) return false;
    return this.members.every((p, j) => p.grad === this.gradOf[j]);
  }

  /** Frees the chunk's own handles (parameters and gradients keep their storage). */
  dispose(): void {
    this.params.dispose();
    this.grads?.dispose();
    for (const name of Object.keys(this.moments) as MomentName[]) {
      this.moments[name]?.dispose();
      for (const v of this.views[name]) v?.dispose();
    }
  }
}

/**
 * A parameter group packed into chunks. Built by `packGroup`; `prepare` checks (and restores) the
 * invariants a fused step needs and returns the group's common step count.
 */
export class PackedGroup {
  constructor(
    /** The group's parameters when it was packed; a changed list is no longer fused. */
    readonly params: readonly Tensor[],
    readonly chunks: readonly Chunk[],
  ) {}

  /**
   * Readies a fused step: every parameter still packed and live, every gradient a float32 tensor of its
   * parameter's shape (moved into its slot when it is not there yet), every parameter's state at the
   * same step count, with `names` as views of the chunk's moment buffers (existing state tensors are
   * copied in and disposed; missing ones start at zero). Returns that step count, or null when the
   * group must take the per-parameter path (a missing or odd gradient, diverged step counts, ...).
   * A null return leaves everything valid for that path. Cheap when nothing changed: identity checks.
   */
  prepare(params: readonly Tensor[], state: Map<Tensor, ParamState>, names: readonly MomentName[]): number | null {
    if (params.length !== this.params.length || params.some((p, i) => p !== this.params[i])) return null;
    let step = -1;
    for (const c of this.chunks) {
      for (const p of c.members) {
        const g = p.grad;
        if (p.disposed || p.storage !== c.params.storage || !g || g.disposed || g.dtype !== 'float32') return null;
        if (g.storage.backend !== p.storage.backend || g.ndim !== p.ndim || g.shape.some((d, k) => d !== p.shape[k]))
          return null;
        const s = state.get(p)?.step ?? 0;
        if (step < 0) step = s;
        else if (s !== step) return null;
      }
    }
    for (const c of this.chunks) {
      if (!c.gradsInPlace() && !c.adoptGrads()) return null;
      c.members.forEach((p, j) => {
        let st = state.get(p);
        if (!st) state.set(p, (st = { step, tensors: {} }));
        for (const name of names) {
          const view = c.view(name, j);
          const t = st.tensors[name];
          if (t === view) continue;
          if (t) {
            view.copy_(t);
            t.dispose();
          } else view.zero_();
          st.tensors[name] = view;
        }
      });
    }
    return step;
  }

  /** Frees the chunks' handles. */
  dispose(): void {
    for (const c of this.chunks) c.dispose();
  }
}

/**
 * Packs `params` (float32, one device) into chunks of at most `maxChunk` elements, each parameter
 * becoming a view of its chunk (see `packTensors`). Null when they are not all float32 on one device,
 * or when a parameter shares its storage with another handle (a view, a saved tensor) and is not
 * already packed; then nothing is promised packed (a retry later may succeed).
 */
export function packGroup(params: readonly Tensor[], maxChunk = MAX_CHUNK_ELEMENTS): PackedGroup | null {
  const backend = params[0]?.storage.backend;
  if (params.some((p) => p.disposed || p.dtype !== 'float32' || p.storage.backend !== backend)) return null;
  const runs: Tensor[][] = [];
  let size = Infinity;
  for (const p of params) {
    if (size + p.size > maxChunk) {
      runs.push([]);
      size = 0;
    }
    runs.at(-1)!.push(p);
    size += p.size;
  }
  const chunks: Chunk[] = [];
  for (const members of runs) {
    const flat = packTensors(members);
    if (!flat) {
      for (const c of chunks) c.dispose();
      return null;
    }
    chunks.push(new Chunk(members, flat));
  }
  return new PackedGroup([...params], chunks);
}
