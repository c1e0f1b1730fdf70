// Flat storage for many tensors: packing tensors (an optimizer's parameters, their gradients) into one
// buffer as views of it, so that one kernel can update them all, and coalescing tensors that lie side
// by side in one storage into 1-D runs, so that zeroing or reducing them costs one op per run.
import { OpError, fmtShape } from '../core/errors.js';
import { contiguousStrides } from '../core/shape.js';
import { allocTensor, backendOf } from './engine.js';
import { noGrad } from './gradmode.js';
import type { Storage } from './storage.js';
import { Tensor } from './tensor.js';

/** A new 1-D handle on elements [offset, offset + n) of `storage` (tracked by the current tidy scope). */
function flatHandle(storage: Storage, dtype: Tensor['dtype'], offset: number, n: number): Tensor {
  storage.retain();
  return new Tensor(storage, [n], [1], offset, dtype);
}

/** True when `ts` already lie back to back, each contiguous, in order, in one storage. */
function tiled(ts: readonly Tensor[]): boolean {
  let end = ts[0]!.offset;
  for (const t of ts) {
    if (t.storage !== ts[0]!.storage || !t.isContiguous || t.offset !== end) return false;
    end += t.size;
  }
  return true;
}

/**
 * Copies `t`'s elements into elements [at, at + t.size) of the contiguous 1-D `flat` (same dtype and
 * device) and re-points `t` at that slice, contiguous: the same Tensor object with the same shape and
 * values, grad, requiresGrad and hooks (a leaf stays a leaf), now a view of `flat`'s storage. `t` must be
 * the only handle on its storage (no views, no tensor saved for backward), which would otherwise stop
 * aliasing it without notice. Whatever `flat`'s slice held before is overwritten.
 */
export function moveInto(t: Tensor, flat: Tensor, at: number): void {
  t.assertLive('moveInto');
  flat.assertLive('moveInto');
  const backend = backendOf('moveInto', [t, flat]);
  if (t.dtype !== flat.dtype) throw new OpError('moveInto', `dtype ${t.dtype} differs from the flat ${flat.dtype}`);
  if (flat.ndim !== 1 || !flat.isContiguous || at < 0 || at + t.size > flat.size) {
    throw new OpError('moveInto', `${t.size} elements at ${at} do not fit the flat tensor ${fmtShape(flat.shape)}`);
  }
  if (t.storage === flat.storage || t.storage.refs !== 1) {
    throw new OpError('moveInto', `tensor #${t.id} shares its storage with other handles (views or saved tensors)`);
  }
  const strides = contiguousStrides(t.shape);
  const offset = flat.offset + at;
  if (t.size > 0) {
    const dst = { buffer: flat.storage.buffer, dtype: t.dtype, shape: t.shape, strides, offset };
    backend.run('copy', [t.spec()], dst, {});
    flat.storage.version++;
  }
  flat.storage.retain();
  t.rebind(flat.storage, offset, strides);
}

/**
 * Packs `ts` (distinct, live, of one dtype and device) into one flat storage, in order, and returns a
 * 1-D tensor over all their elements (tracked by the current tidy scope; `keep` it). Each tensor becomes
 * a view of its slice, as `moveInto` describes. When they already lie back to back in one storage
 * nothing moves (the result is a new handle over them); otherwise they are copied into a new buffer,
 * which needs each to be the only handle on its storage: if one is not, nothing moves and the result
 * is null. Packed tensors share one version counter, like PyTorch views of one base.
 */
export function packTensors(ts: readonly Tensor[]): Tensor | null {
  if (ts.length === 0) throw new OpError('packTensors', 'needs at least one tensor');
  const backend = backendOf('packTensors', ts);
  const dtype = ts[0]!.dtype;
  for (const t of ts) {
    if (t.dtype !== dtype) throw new OpError('packTensors', `mixed dtypes ${dtype} and ${t.dtype}`);
  }
  if (new Set(ts).size !== ts.length) throw new OpError('packTensors', 'a tensor appears more than once');
  const total = ts.reduce((n, t) => n + t.size, 0);
  if (tiled(ts)) return flatHandle(ts[0]!.storage, dtype, ts[0]!.offset, total);
  if (ts.some((t) => t.storage.refs !== 1)) return null;
  const flat = allocTensor(backend, [total], dtype, 'packTensors');
  noGrad(() => {
    let at = 0;
    for (const t of ts) {
      moveInto(t, flat, at);
      at += t.size;
    }
  });
  return flat;
}

/**
 * The elements of `ts` as 1-D tensors, merging tensors that are contiguous and lie back to back in one
 * storage (as packed gradients do) into one run each; any other tensor comes back as a view of itself.
 * Every element of every input appears exactly once per input that holds it (duplicates are kept), so
 * sums, norms and in-place scaling over the runs equal those over the inputs. The results are new
 * handles (tracked by the current tidy scope), in the order of each storage's first appearance.
 */
export function contiguousRuns(ts: readonly Tensor[]): Tensor[] {
  const byStorage = new Map<Storage, Tensor[]>();
  const out: Tensor[] = [];
  for (const t of ts) {
    t.assertLive('contiguousRuns');
    if (!t.isContiguous) {
      t.storage.retain();
      out.push(new Tensor(t.storage, t.shape, t.strides, t.offset, t.dtype));
      continue;
    }
    const list = byStorage.get(t.storage);
    if (list) list.push(t);
    else byStorage.set(t.storage, [t]);
  }
  for (const [storage, list] of byStorage) {
    list.sort((a, b) => a.offset - b.offset);
    let start = -1;
    let end = -1;
    let dtype = list[0]!.dtype;
    const flush = (): void => {
      if (start >= 0) out.push(flatHandle(storage, dtype, start, end - start));
    };
    for (const t of list) {
      if (t.offset === end && t.dtype === dtype) end += t.size;
      else {
        flush();
        [start, end, dtype] = [t.offset, t.offset + t.size, t.dtype];
      }
    }
    flush();
  }
  return out;
}
