// View ops on every backend: property tests (fast-check, seeded from the run seed) of reshape round
// trips, random chains of views checked against the oracle for values, against PyTorch's stride rules
// for layout, and for storage sharing (writes through a view land in the base); copies that must not
// alias; view() refusals; contiguous(); broadcasting shapes against the oracle.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { noGrad, zeros, type Tensor } from '../../src/index.js';
import { broadcastShapes } from '../../src/core/shape.js';
import { forEachBackend } from '../helpers/backends.js';
import { Rng, randomND, randomPermutation, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { assertThrowsWith, expectTensor, fromND, stridedView } from './util.js';

const NUM_RUNS = 50;

/** A fast-check seed derived from the run seed (so TL_TEST_SEED reproduces the property runs too). */
function fcSeed(label: string, t: { diagnostic(message: string): void }): number {
  return testRng(`fc ${label}`, t).int(0, 2 ** 31 - 1);
}

/** Row-major strides (PyTorch's for a new tensor). */
function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** torch.flatten's shape: dims start..end (inclusive, may be negative) merged into one. */
function flattenShape(shape: readonly number[], start: number, end: number): number[] {
  const r = shape.length;
  const s = start < 0 ? start + r : start;
  const e = end < 0 ? end + r : end;
  return [...shape.slice(0, s), O.numel(shape.slice(s, e + 1)), ...shape.slice(e + 1)];
}

/** A random shape with the same element count: the prime factors of `shape` regrouped, with some 1s. */
function regroup(rng: Rng, shape: readonly number[]): number[] {
  const factors: number[] = [];
  for (let d of shape) {
    for (let p = 2; d > 1;) {
      if (d % p === 0) {
        factors.push(p);
        d /= p;
      } else p++;
    }
  }
  const perm = randomPermutation(rng, factors.length);
  const out: number[] = [];
  for (const i of perm) {
    if (out.length === 0 || rng.bool(0.5)) out.push(factors[i]!);
    else out[out.length - 1]! *= factors[i]!;
  }
  while (rng.bool(0.3) && out.length < 5) out.splice(rng.int(0, out.length + 1), 0, 1);
  if (out.length > 0 && rng.bool(0.3)) out[rng.int(0, out.length)] = -1;
  return out;
}

/** The layout PyTorch gives a view: shape, strides, storage offset. */
interface Layout {
  shape: number[];
  strides: number[];
  offset: number;
}

/** One view op: applied to a tensor, to an oracle array, and to a PyTorch layout. */
interface ViewStep {
  name: string;
  /** False when the result has overlapping elements (expand): no writes through it. */
  writable: boolean;
  tensor(x: Tensor): Tensor;
  oracle(a: O.ND): O.ND;
  layout(l: Layout): Layout;
}

const norm = (v: number, n: number): number => Math.min(Math.max(v < 0 ? v + n : v, 0), n);

/** A random view op valid for `shape` (never a negative-dim unsqueeze: that has its own test). */
function randomStep(rng: Rng, shape: readonly number[]): ViewStep {
  const r = shape.length;
  const kinds =
    r === 0
      ? ['unsqueeze', 'expand']
      : ['permute', 'transpose', 'slice', 'narrow', 'select', 'unsqueeze', 'squeeze', 'expand'];
  const kind = rng.pick(kinds);
  switch (kind) {
    case 'permute': {
      const dims = randomPermutation(rng, r).map((d) => (rng.bool(0.3) ? d - r : d));
      const p = dims.map((d) => (d < 0 ? d + r : d));
      return {
        name: `permute([${dims}])`,
        writable: true,
        tensor: (x) => x.permute(dims),
        oracle: (a) => O.permute(a, dims),
        layout: (l) => ({ shape: p.map((d) => l.shape[d]!), strides: p.map((d) => l.strides[d]!), offset: l.offset }),
      };
    }
    case 'transpose': {
      const a0 = rng.int(0, r);
      const a1 = rng.int(0, r);
      return {
        name: `transpose(${a0}, ${a1})`,
        writable: true,
        tensor: (x) => x.transpose(a0, a1),
        oracle: (a) => O.transpose(a, a0, a1),
        layout: (l) => {
          const s = [...l.shape];
          const st = [...l.strides];
          [s[a0], s[a1]] = [s[a1]!, s[a0]!];
          [st[a0], st[a1]] = [st[a1]!, st[a0]!];
          return { shape: s, strides: st, offset: l.offset };
        },
      };
    }
    case 'slice': {
      const axis = rng.int(0, r);
      const n = shape[axis]!;
      const start = rng.int(-n - 2, n + 2); // negative and out-of-range bounds clamp (Python semantics)
      const end = rng.pick([rng.int(-n - 2, n + 3), Infinity]);
      const step = rng.int(1, 4);
      const axArg = rng.bool() ? axis - r : axis;
      return {
        name: `slice(${axArg}, ${start}, ${end}, ${step})`,
        writable: true,
        tensor: (x) => (end === Infinity ? x.slice(axArg, start, undefined, step) : x.slice(axArg, start, end, step)),
        oracle: (a) => O.slice(a, axis, start, end, step),
        layout: (l) => {
          const s0 = norm(start, n);
          const e0 = Math.max(norm(end, n), s0);
          const shape2 = [...l.shape];
          shape2[axis] = Math.ceil((e0 - s0) / step);
          const st = [...l.strides];
          st[axis] = l.strides[axis]! * step;
          return { shape: shape2, strides: st, offset: l.offset + s0 * l.strides[axis]! };
        },
      };
    }
    case 'narrow': {
      const dim = rng.int(0, r);
      const n = shape[dim]!;
      const start = rng.int(0, n + 1);
      const length = rng.int(0, n - start + 1);
      return {
        name: `narrow(${dim}, ${start}, ${length})`,
        writable: true,
        tensor: (x) => x.narrow(dim, start, length),
        oracle: (a) => O.slice(a, dim, start, start + length),
        layout: (l) => {
          const s = [...l.shape];
          s[dim] = length;
          return { shape: s, strides: [...l.strides], offset: l.offset + start * l.strides[dim]! };
        },
      };
    }
    case 'select': {
      const dim = rng.int(0, r);
      const n = shape[dim]!;
      if (n === 0)
        return randomStep(
          rng,
          shape.map((d) => d),
        ); // nothing to select; draw again
      const i = rng.int(-n, n);
      const ii = i < 0 ? i + n : i;
      return {
        name: `select(${dim}, ${i})`,
        writable: true,
        tensor: (x) => x.select(dim, i),
        oracle: (a) =>
          O.reshape(
            O.slice(a, dim, ii, ii + 1),
            a.shape.filter((_, d) => d !== dim),
          ),
        layout: (l) => ({
          shape: l.shape.filter((_, d) => d !== dim),
          strides: l.strides.filter((_, d) => d !== dim),
          offset: l.offset + ii * l.strides[dim]!,
        }),
      };
    }
    case 'unsqueeze': {
      const dim = rng.int(0, r + 1);
      return {
        name: `unsqueeze(${dim})`,
        writable: true,
        tensor: (x) => x.unsqueeze(dim),
        oracle: (a) => O.reshape(a, [...a.shape.slice(0, dim), 1, ...a.shape.slice(dim)]),
        layout: (l) => ({
          shape: [...l.shape.slice(0, dim), 1, ...l.shape.slice(dim)],
          // PyTorch: the new dim's stride is size*stride of the dim it precedes (1 at the end); it never matters for a size-1 dim
          strides: [...l.strides.slice(0, dim), dim < r ? l.shape[dim]! * l.strides[dim]! : 1, ...l.strides.slice(dim)],
          offset: l.offset,
        }),
      };
    }
    case 'squeeze': {
      const ones = shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      const dim = rng.bool() ? undefined : rng.bool() && ones.length ? rng.pick(ones) : rng.int(0, r);
      const drop = (i: number): boolean => shape[i] === 1 && (dim === undefined || dim === i);
      return {
        name: `squeeze(${dim ?? ''})`,
        writable: true,
        tensor: (x) => x.squeeze(dim),
        oracle: (a) =>
          O.reshape(
            a,
            a.shape.filter((_, i) => !drop(i)),
          ),
        layout: (l) => ({
          shape: l.shape.filter((_, i) => !drop(i)),
          strides: l.strides.filter((_, i) => !drop(i)),
          offset: l.offset,
        }),
      };
    }
    default: {
      // expand: stretch size-1 dims, keep others (sometimes as -1), add up to 2 leading dims
      const lead = Array.from({ length: rng.int(0, 3) }, () => rng.int(1, 4));
      const target = shape.map((d) => (d === 1 ? rng.int(1, 4) : rng.bool(0.3) ? -1 : d));
      const full = [...lead, ...target];
      const resolved = [...lead, ...target.map((d, i) => (d === -1 ? shape[i]! : d))];
      return {
        name: `expand([${full}])`,
        writable: false,
        tensor: (x) => x.expand(full),
        oracle: (a) => O.broadcastTo(a, resolved),
        layout: (l) => ({
          shape: resolved,
          strides: [
            ...lead.map(() => 0),
            ...l.shape.map((d, i) => (d === 1 && resolved[lead.length + i] !== 1 ? 0 : l.strides[i]!)),
          ],
          offset: l.offset,
        }),
      };
    }
  }
}

/**
 * Asserts strides equal on every dim of size > 1 (the stride of a size-1 dim never addresses anything,
 * nor does any stride of an empty tensor).
 */
function assertStrides(t: Tensor, want: Layout, what: string): void {
  assert.deepEqual(t.shape, want.shape, `${what}: shape`);
  if (O.numel(want.shape) === 0) return;
  const got = t.strides.map((s, i) => (t.shape[i]! > 1 ? s : null));
  const exp = want.strides.map((s, i) => (want.shape[i]! > 1 ? s : null));
  assert.deepEqual(got, exp, `${what}: strides [${t.strides}], PyTorch's [${want.strides}]`);
  assert.equal(t.offset, want.offset, `${what}: storage offset`);
}

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 4 });

forEachBackend((device) => {
  describe('reshape / view', () => {
    test('property: x.reshape(s) has the row-major values and x.reshape(s).reshape(x.shape) equals x', async (t) => {
      const seed = fcSeed('reshape round trip', t);
      await fc.assert(
        fc.asyncProperty(shapeArb, fc.integer(), fc.boolean(), async (shape, s, strided) => {
          const rng = new Rng(s);
          const a = randomND(rng, shape);
          const x = strided ? stridedView(rng, a, 'float32', device) : fromND(a, 'float32', device);
          const target = regroup(rng, shape);
          const y = x.reshape(target);
          await expectTensor(y, O.reshape(a, target), 'float32', {
            what: `reshape [${shape}] -> [${target}]${strided ? ' strided' : ''}`,
          });
          await expectTensor(y.reshape(shape), a, 'float32', { what: `reshape back to [${shape}]` });
          if (!strided)
            await expectTensor(x.view(target), O.reshape(a, target), 'float32', {
              what: `view of a contiguous tensor as [${target}]`,
            });
        }),
        { numRuns: NUM_RUNS, seed },
      );
    });

    test('reshape of a contiguous tensor is a view: writes through it reach the base', async (t) => {
      const rng = testRng('reshape aliasing', t);
      const a = randomND(rng, [4, 6]);
      const x = fromND(a, 'float32', device);
      const y = x.reshape([2, 3, 4]);
      assert.deepEqual(y.strides, [12, 4, 1]);
      const src = randomND(rng, [2, 3, 4]);
      noGrad(() => y.copy_(fromND(src, 'float32', device)));
      await expectTensor(x, O.reshape(src, [4, 6]), 'float32', { what: 'base after copy_ into its reshape' });
    });

    test('transpose + reshape of a non-viewable layout copies, and the copy does not alias', async (t) => {
      const rng = testRng('reshape copy', t);
      const a = randomND(rng, [3, 5]);
      const x = fromND(a, 'float32', device);
      const tr = x.transpose();
      assert.deepEqual(tr.strides, [1, 5]);
      const flat = tr.reshape([15]);
      assert.equal(flat.isContiguous, true);
      await expectTensor(flat, O.reshape(O.transpose(a), [15]), 'float32', { what: 'reshape of a transpose' });
      noGrad(() => flat.fill_(123));
      await expectTensor(x, a, 'float32', { what: 'base unchanged after writing the copy' });
      noGrad(() => x.zero_());
      await expectTensor(flat, O.nd([15], 123), 'float32', { what: 'copy unchanged after writing the base' });
      assertThrowsWith(() => tr.view([15]), ['view', '[5, 3]', 'reshape']);
      assertThrowsWith(() => x.transpose().flatten().view([3, 5]).transpose().view([-1]), ['view']);
      // a stepped slice cannot be merged with the next dim, but can be split
      const s = fromND(randomND(rng, [4, 6]), 'float32', device).slice(0, 0, undefined, 2);
      assertThrowsWith(() => s.view([12]), ['view']);
      assert.deepEqual(s.view([2, 2, 3]).strides, [12, 3, 1]);
    });

    test('reshape errors: wrong element count, two -1s', () => {
      const x = zeros([2, 3], { device });
      assertThrowsWith(() => x.reshape([4, 2]), ['reshape', '[2, 3]', '[4, 2]']);
      assertThrowsWith(() => x.reshape([-1, -1]), ['reshape']);
      assertThrowsWith(() => x.view([5, -1]), ['view']);
    });
  });

  describe('view chains', () => {
    test('property: random chains of views give the oracle values and PyTorch strides/offsets, and share storage', async (t) => {
      const seed = fcSeed('view chains', t);
      await fc.assert(
        fc.asyncProperty(shapeArb, fc.integer(), fc.integer({ min: 1, max: 3 }), async (shape, s, len) => {
          const rng = new Rng(s);
          const a = randomND(rng, shape);
          const base = fromND(a, 'float32', device);
          let v = base;
          let ref = a;
          let idx = O.reshape(O.arange(O.numel(shape)), shape); // base position of every view element
          let layout: Layout = { shape: [...shape], strides: contiguousStrides(shape), offset: 0 };
          let writable = true;
          const names: string[] = [];
          for (let i = 0; i < len; i++) {
            const step = randomStep(rng, v.shape);
            names.push(step.name);
            const what = `[${shape}].${names.join('.')}`;
            v = step.tensor(v);
            ref = step.oracle(ref);
            idx = step.oracle(idx);
            layout = step.layout(layout);
            writable &&= step.writable;
            assertStrides(v, layout, what);
            await expectTensor(v, ref, 'float32', { what });
          }
          const what = `[${shape}].${names.join('.')}`;
          if (!writable) return;
          // copy_ through the view, then add_: both land in the base at the view's positions.
          const src = randomND(rng, v.shape);
          const want = O.clone(a);
          idx.data.forEach((p, i) => (want.data[p] = src.data[i]!));
          const v0 = base.version;
          noGrad(() => v.copy_(fromND(src, 'float32', device)));
          assert.ok(base.version > v0, `${what}: writing a view bumps the base's version`);
          await expectTensor(base, want, 'float32', { what: `${what}: base after copy_ into the view` });
          noGrad(() => v.add_(1));
          idx.data.forEach((p) => (want.data[p] = Math.fround(want.data[p]! + 1)));
          await expectTensor(base, want, 'float32', { what: `${what}: base after add_ on the view` });
        }),
        { numRuns: NUM_RUNS, seed },
      );
    });

    test('PyTorch stride facts: transpose, step slices, expand, permute, select, unsqueeze', () => {
      const x = zeros([2, 3], { device });
      assert.deepEqual(x.strides, [3, 1]);
      assert.deepEqual(x.transpose().strides, [1, 3]);
      assert.deepEqual(x.transpose().shape, [3, 2]);
      assert.deepEqual(x.slice(1, 0, undefined, 2).strides, [3, 2]);
      assert.deepEqual(x.slice(1, 0, undefined, 2).shape, [2, 2]);
      const y = zeros([4, 5, 6], { device });
      assert.deepEqual(y.permute([2, 0, 1]).strides, [1, 30, 6]);
      assert.deepEqual(y.slice(0, 1, undefined, 2).strides, [60, 6, 1]);
      assert.equal(y.slice(0, 1, undefined, 2).offset, 30);
      assert.deepEqual(y.select(1, 2).strides, [30, 1]);
      assert.equal(y.select(1, 2).offset, 12);
      assert.equal(y.select(2, -1).offset, 5);
      assert.deepEqual(y.narrow(2, 1, 3).strides, [30, 6, 1]);
      assert.equal(y.narrow(2, 1, 3).offset, 1);
      const c = zeros([3, 1], { device });
      assert.deepEqual(c.expand([3, 4]).strides, [1, 0]);
      assert.deepEqual(c.expand([2, 3, 4]).strides, [0, 1, 0]);
      assert.deepEqual(c.expand([2, -1, 4]).shape, [2, 3, 4]);
      assert.deepEqual(y.unsqueeze(1).shape, [4, 1, 5, 6]);
      assert.equal(y.isContiguous, true);
      assert.equal(y.transpose(0, 2).isContiguous, false);
    });

    test('empty views whose offset lies at or past the end of the storage read back as empty', async () => {
      const x = zeros([5, 3], { device });
      const views: [string, Tensor][] = [
        ['x[5:]', x.slice(0, 5)],
        ['x[5:].T[2]', x.slice(0, 5).transpose().select(0, 2)],
        ['x[:, 3:]', x.slice(1, 3)],
        ['x.narrow(0, 5, 0).narrow(1, 3, 0)', x.narrow(0, 5, 0).narrow(1, 3, 0)],
      ];
      for (const [what, v] of views) {
        assert.equal(v.size, 0, what);
        await expectTensor(v, O.nd(v.shape), 'float32', { what });
        await expectTensor(v.contiguous(), O.nd(v.shape), 'float32', { what: `${what}.contiguous()` });
      }
    });

    test('unsqueeze and squeeze with negative dims (torch: -1 appends a dim)', async (t) => {
      const rng = testRng('unsqueeze negative', t);
      const a = randomND(rng, [2, 3]);
      const x = fromND(a, 'float32', device);
      const cases: [number, number[]][] = [
        [0, [1, 2, 3]],
        [1, [2, 1, 3]],
        [2, [2, 3, 1]],
        [-1, [2, 3, 1]],
        [-2, [2, 1, 3]],
        [-3, [1, 2, 3]],
      ];
      for (const [d, shape] of cases) {
        const u = x.unsqueeze(d);
        assert.deepEqual(u.shape, shape, `unsqueeze(${d}) of [2, 3]`);
        await expectTensor(u, O.reshape(a, shape), 'float32', { what: `unsqueeze(${d})` });
      }
      const z = fromND(O.reshape(a, [2, 1, 3, 1]), 'float32', device);
      assert.deepEqual(z.squeeze(-1).shape, [2, 1, 3]);
      assert.deepEqual(z.squeeze(-3).shape, [2, 3, 1]);
      assert.deepEqual(z.squeeze(0).shape, [2, 1, 3, 1], 'squeezing a dim that is not 1 is a no-op');
      assert.deepEqual(z.squeeze().shape, [2, 3]);
      assertThrowsWith(() => x.unsqueeze(3), ['unsqueeze']);
    });

    test('flatten, slice errors, select/narrow errors, expand errors, permute errors', async (t) => {
      const rng = testRng('flatten', t);
      const a = randomND(rng, [2, 3, 4, 5]);
      const x = fromND(a, 'float32', device);
      for (const [s, e, shape] of [
        [0, -1, [120]],
        [1, 2, [2, 12, 5]],
        [-2, -1, [2, 3, 20]],
        [2, 2, [2, 3, 4, 5]],
      ] as [number, number, number[]][]) {
        await expectTensor(x.flatten(s, e), O.reshape(a, shape), 'float32', { what: `flatten(${s}, ${e})` });
        const tr = O.transpose(a, 0, 3);
        await expectTensor(x.transpose(0, 3).flatten(s, e), O.reshape(tr, flattenShape(tr.shape, s, e)), 'float32', {
          what: `flatten(${s}, ${e}) of a transpose`,
        });
      }
      await expectTensor(fromND(O.nd([], [4]), 'float32', device).flatten(), O.nd([1], [4]), 'float32', {
        what: 'flatten of a 0-d tensor',
      });
      assertThrowsWith(() => x.slice(0, 0, 2, 0), ['slice', 'step']);
      assertThrowsWith(() => x.slice(0, 0, 2, -1), ['slice', 'step']);
      assertThrowsWith(() => x.slice(4), ['slice', 'axis 4']);
      assertThrowsWith(() => x.select(1, 3), ['select', '3']);
      assertThrowsWith(() => x.select(1, -4), ['select']);
      assertThrowsWith(() => x.narrow(2, 3, 2), ['narrow']);
      assertThrowsWith(() => x.expand([2, 6, 4, 5]), ['expand', '[2, 3, 4, 5]', '[2, 6, 4, 5]']);
      assertThrowsWith(() => x.expand([3, 4, 5]), ['expand']);
      assertThrowsWith(() => x.permute([0, 1, 2]), ['permute']);
      assertThrowsWith(() => x.permute([0, 1, 1, 2]), ['permute']);
      assertThrowsWith(() => x.flatten(2, 1), ['flatten']);
    });
  });

  describe('contiguous / detach', () => {
    test('property: contiguous() of a non-contiguous view copies the values into a dense tensor', async (t) => {
      const seed = fcSeed('contiguous', t);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
          fc.integer(),
          async (shape, s) => {
            const rng = new Rng(s);
            const a = randomND(rng, shape);
            const v = stridedView(rng, a, 'float32', device);
            const c = v.contiguous();
            assert.equal(c.isContiguous, true);
            assertStrides(
              c,
              { shape, strides: contiguousStrides(shape), offset: c.offset },
              `contiguous of [${shape}]`,
            );
            await expectTensor(c, a, 'float32', { what: `contiguous of a strided [${shape}]` });
            if (!v.isContiguous) {
              noGrad(() => c.fill_(-5));
              await expectTensor(v, a, 'float32', { what: 'the view is untouched by writes to its contiguous copy' });
            }
          },
        ),
        { numRuns: NUM_RUNS, seed },
      );
      const x = zeros([2, 3], { device });
      assert.equal(x.contiguous(), x, 'contiguous() of a contiguous tensor is the tensor itself');
    });

    test('detach shares storage; clone does not', async (t) => {
      const rng = testRng('detach', t);
      const a = randomND(rng, [3, 4]);
      const x = fromND(a, 'float32', device);
      const d = x.detach();
      const c = x.clone();
      noGrad(() => d.fill_(2));
      await expectTensor(x, O.nd([3, 4], 2), 'float32', { what: 'base after writing its detached handle' });
      await expectTensor(c, a, 'float32', { what: 'clone unchanged' });
      const cv = x.transpose().clone();
      assert.equal(cv.isContiguous, true);
      await expectTensor(cv, O.nd([4, 3], 2), 'float32', { what: 'clone of a transpose' });
    });
  });

  describe('broadcasting', () => {
    const dimArb = fc.integer({ min: 0, max: 3 });
    const pairArb = fc.tuple(fc.array(dimArb, { maxLength: 4 }), fc.array(dimArb, { maxLength: 4 }));

    test('property: broadcastShapes matches the oracle and throws exactly when incompatible', (t) => {
      const seed = fcSeed('broadcastShapes', t);
      fc.assert(
        fc.property(pairArb, ([sa, sb]) => {
          let want: number[] | null;
          try {
            want = O.broadcastShape(sa, sb);
          } catch {
            want = null;
          }
          if (want === null)
            assert.throws(() => broadcastShapes('add', sa, sb), /add/, `[${sa}] and [${sb}] are incompatible`);
          else assert.deepEqual(broadcastShapes('add', sa, sb), want, `broadcast of [${sa}] and [${sb}]`);
        }),
        { numRuns: 300, seed },
      );
    });

    test('property: binary ops broadcast (or refuse, naming the op and both shapes) like the oracle', async (t) => {
      const seed = fcSeed('broadcast ops', t);
      await fc.assert(
        fc.asyncProperty(pairArb, fc.integer(), async ([sa, sb], s) => {
          const rng = new Rng(s);
          let want: number[] | null;
          try {
            want = O.broadcastShape(sa, sb);
          } catch {
            want = null;
          }
          const a = randomND(rng, sa);
          const b = randomND(rng, sb);
          const x = fromND(a, 'float32', device);
          const y = fromND(b, 'float32', device);
          if (want === null) {
            assertThrowsWith(() => x.sub(y), ['sub', `[${sa.join(', ')}]`, `[${sb.join(', ')}]`]);
            assertThrowsWith(() => x.expand(sb), ['expand']);
            return;
          }
          await expectTensor(x.sub(y), O.binary('sub', a, b, 'float32'), 'float32', { what: `[${sa}] - [${sb}]` });
          // expand to the broadcast shape materializes the same values as the oracle's broadcastTo
          await expectTensor(x.expand(want), O.broadcastTo(a, want), 'float32', {
            what: `expand [${sa}] -> [${want}]`,
          });
        }),
        { numRuns: NUM_RUNS, seed },
      );
    });
  });
});
