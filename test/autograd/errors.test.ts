// Bad input gets a clear error: each refused call must throw a tensorloom error (OpError for bad op
// inputs, AutogradError for autograd misuse, both TensorloomError) whose message names the op and
// the offending shapes/dtypes, and must lose nothing (no tensor or buffer left behind).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AutogradError,
  OpError,
  TensorloomError,
  binary,
  cat,
  stack,
  tensor,
  where,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertMem, fromND, mem, thrown } from './util.js';

interface ErrorCase {
  what: string;
  run: (
    device: DeviceName,
    t: (shape: number[], dtype?: 'float32' | 'int32' | 'uint32' | 'bool' | 'float16') => Tensor,
  ) => unknown;
  /** The error class it must be. */
  type: typeof OpError | typeof AutogradError | typeof TensorloomError;
  /** Substrings the message must contain (op name, shapes, dtypes). */
  says: (string | RegExp)[];
}

const CASES: ErrorCase[] = [
  {
    what: 'binary op with shapes that do not broadcast',
    run: (_d, t) => t([2, 3]).add(t([4])),
    type: OpError,
    says: ['add', '[2, 3]', '[4]'],
  },
  {
    what: 'binary op broadcast mismatch in a middle dim',
    run: (_d, t) => binary('mul', t([2, 3, 4]), t([5, 1])),
    type: OpError,
    says: ['mul', '[2, 3, 4]', '[5, 1]'],
  },
  {
    what: 'matmul inner-dim mismatch',
    run: (_d, t) => t([2, 3]).matmul(t([4, 5])),
    type: OpError,
    says: ['matmul', '[2, 3]', '[4, 5]'],
  },
  {
    what: 'batched matmul inner-dim mismatch',
    run: (_d, t) => t([2, 3, 4]).matmul(t([2, 3, 4])),
    type: OpError,
    says: ['matmul', '[2, 3, 4]', '4 vs 3'],
  },
  {
    what: 'matmul batch dims that do not broadcast',
    run: (_d, t) => t([2, 3, 4]).matmul(t([3, 4, 5])),
    type: OpError,
    says: ['matmul', '[2]', '[3]'],
  },
  {
    what: 'matmul of int32 operands',
    run: (_d, t) => t([2, 2], 'int32').matmul(t([2, 2], 'int32')),
    type: OpError,
    says: ['matmul', 'int32'],
  },
  {
    what: 'reshape with a wrong element count',
    run: (_d, t) => t([2, 3]).reshape([4, 2]),
    type: OpError,
    says: ['reshape', '[2, 3]', '[4, 2]', '6'],
  },
  {
    what: 'reshape with two -1 dims',
    run: (_d, t) => t([2, 3]).reshape([-1, -1]),
    type: OpError,
    says: ['reshape', '-1'],
  },
  {
    what: 'permute with a repeated dim',
    run: (_d, t) => t([2, 3, 4]).permute([0, 0, 1]),
    type: OpError,
    says: ['permute', '[0, 0, 1]', '[2, 3, 4]'],
  },
  {
    what: 'permute with too few dims',
    run: (_d, t) => t([2, 3, 4]).permute([1, 0]),
    type: OpError,
    says: ['permute', '[1, 0]', '[2, 3, 4]'],
  },
  {
    what: 'permute with an out-of-range dim',
    run: (_d, t) => t([2, 3]).permute([0, 2]),
    type: OpError,
    says: ['permute', '2'],
  },
  {
    what: 'gather with an index of the wrong rank',
    run: (_d, t) => t([3, 4]).gather(1, t([3], 'int32')),
    type: OpError,
    says: ['gather', '[3, 4]', '[3]'],
  },
  {
    what: 'gather with a float index',
    run: (_d, t) => t([3, 4]).gather(1, t([3, 1])),
    type: OpError,
    says: ['gather', 'float32'],
  },
  {
    what: 'cat with mismatched non-concatenated dims',
    run: (_d, t) => cat([t([2, 3]), t([3, 4])], 0),
    type: OpError,
    says: [/cat/, '[2, 3]', '[3, 4]'],
  },
  {
    what: 'cat with a different rank',
    run: (_d, t) => cat([t([2, 3]), t([2, 3, 1])], 1),
    type: OpError,
    says: [/cat/, '[2, 3]', '[2, 3, 1]'],
  },
  {
    what: 'stack of different shapes',
    run: (_d, t) => stack([t([2, 3]), t([3, 2])]),
    type: OpError,
    says: ['stack', '[2, 3]', '[3, 2]'],
  },
  {
    what: 'where with a non-bool condition',
    run: (_d, t) => where(t([2, 2]), t([2, 2]), t([2, 2])),
    type: OpError,
    says: ['where', 'bool', 'float32'],
  },
  {
    what: 'where with branches that do not broadcast',
    run: (_d, t) => where(t([2, 2], 'bool'), t([2, 3]), t([2, 2])),
    type: OpError,
    says: ['where', '[2, 3]'],
  },
  {
    what: 'softmax on int32',
    run: (_d, t) => t([2, 3], 'int32').softmax(-1),
    type: OpError,
    says: ['softmax', 'int32'],
  },
  {
    what: 'logSoftmax on bool',
    run: (_d, t) => t([2, 3], 'bool').logSoftmax(-1),
    type: OpError,
    says: ['logSoftmax', 'bool'],
  },
  {
    what: 'softmax axis out of range',
    run: (_d, t) => t([2, 3]).softmax(2),
    type: OpError,
    says: ['softmax', 'axis 2', '2 dims'],
  },
  {
    what: 'sum over an out-of-range axis',
    run: (_d, t) => t([2, 3]).sum(3),
    type: OpError,
    says: ['sum', 'axis 3'],
  },
  {
    what: 'max over an empty dim',
    run: (_d, t) => t([2, 0]).max(1),
    type: OpError,
    says: ['max', '[2, 0]'],
  },
  {
    what: 'mixing int32 and uint32 operands',
    run: (_d, t) => t([2], 'int32').add(t([2], 'uint32')),
    type: OpError,
    says: ['add', 'int32', 'uint32'],
  },
  {
    what: 'mixing int32 and uint32 in cat',
    run: (_d, t) => cat([t([2], 'int32'), t([2], 'uint32')]),
    type: OpError,
    says: ['cat', 'int32', 'uint32'],
  },
  {
    what: 'arithmetic on two bool tensors',
    run: (_d, t) => t([2], 'bool').add(t([2], 'bool')),
    type: OpError,
    says: ['add', 'bool'],
  },
  {
    what: 'in-place op whose result dtype does not fit the target',
    run: (_d, t) => t([2], 'int32').div_(2),
    type: OpError,
    says: ['div_', 'float32', 'int32'],
  },
  {
    what: 'in-place op with an operand that does not broadcast to the target',
    run: (_d, t) => t([3]).add_(t([2, 3])),
    type: OpError,
    says: ['add_', '[2, 3]', '[3]'],
  },
  {
    what: 'expand to an incompatible shape',
    run: (_d, t) => t([2, 3]).expand([2, 4]),
    type: OpError,
    says: ['expand', '[2, 3]', '[2, 4]'],
  },
  {
    what: 'slice with step 0',
    run: (_d, t) => t([5]).slice(0, 0, 5, 0),
    type: OpError,
    says: ['slice', 'step'],
  },
  {
    what: 'select out of range',
    run: (_d, t) => t([2, 3]).select(1, 3),
    type: OpError,
    says: ['select', '3'],
  },
  {
    what: 'indexSelect with a 2-D index',
    run: (_d, t) => t([4, 3]).indexSelect(0, t([2, 2], 'int32')),
    type: OpError,
    says: ['indexSelect', '[2, 2]'],
  },
  {
    what: 'indexAdd with a src of the wrong shape',
    run: (_d, t) => t([4, 3]).indexAdd(0, t([2], 'int32'), t([3, 3])),
    type: OpError,
    says: ['indexAdd', '[2, 3]', '[3, 3]'],
  },
  {
    what: 'tensor() with data that does not fill the shape',
    run: (device) => tensor([1, 2, 3], { shape: [2, 2], device }),
    type: OpError,
    says: ['tensor', '[2, 2]', '3'],
  },
];

forEachBackend((device) => {
  const made: Tensor[] = [];
  const make = (shape: number[], dtype: 'float32' | 'int32' | 'uint32' | 'bool' | 'float16' = 'float32'): Tensor => {
    const x = fromND(O.nd(shape, dtype === 'bool' ? 1 : 0.5), device, { dtype });
    made.push(x);
    return x;
  };

  for (const c of CASES) {
    test(`error: ${c.what}`, () => {
      const base = mem(device);
      const e = thrown(() => {
        const r = c.run(device, make);
        if (r instanceof Promise) throw new Error(`${c.what}: returned a promise instead of throwing`);
      }, c.what);
      // the tensors the case built itself are counted; nothing else may remain
      const built = made.splice(0);
      assert.ok(
        e instanceof TensorloomError,
        `${c.what}: expected a TensorloomError, got ${e.constructor.name}: ${e.message}`,
      );
      assert.ok(e instanceof c.type, `${c.what}: expected ${c.type.name}, got ${e.constructor.name}: ${e.message}`);
      for (const s of c.says) {
        if (typeof s === 'string')
          assert.ok(e.message.includes(s), `${c.what}: message should mention '${s}': ${e.message}`);
        else assert.match(e.message, s, `${c.what}: message`);
      }
      for (const x of built) x.dispose();
      assertMem(device, base, `${c.what}: after the error (nothing may be lost)`);
    });
  }

  test('error: an OpError names its op in .op', () => {
    const a = make([2, 3]);
    const e = thrown(() => a.reshape([7]), 'reshape');
    assert.ok(e instanceof OpError);
    assert.equal(e.op, 'reshape');
    assert.equal(e.name, 'OpError');
    for (const x of made.splice(0)) x.dispose();
  });

  test('error: an op on a disposed tensor says disposed (and names the op)', async () => {
    const a = make([2, 3]);
    const b = make([2, 3]);
    a.dispose();
    for (const [op, fn] of [
      ['add', () => a.add(b)],
      ['add', () => b.add(a)],
      ['exp', () => a.exp()],
      ['matmul', () => a.matmul(b.transpose())],
      ['reshape', () => a.reshape([6])],
      ['sum', () => a.sum()],
      ['add_', () => b.add_(a)],
    ] as [string, () => unknown][]) {
      const e = thrown(fn, `${op} on a disposed tensor`);
      assert.ok(e instanceof TensorloomError, `${op}: expected TensorloomError, got ${e.name}`);
      assert.match(e.message, /disposed/, op);
      assert.ok(e.message.includes(op), `${op}: message should name the op: ${e.message}`);
      assert.ok(e.message.includes('[2, 3]'), `${op}: message should give the shape: ${e.message}`);
    }
    await assert.rejects(a.toArray(), (err: Error) => err instanceof TensorloomError && /disposed/.test(err.message));
    for (const x of made.splice(0)) x.dispose();
  });

  test('error: backward on a tensor that does not require grad', () => {
    const a = make([2, 3]);
    const s = a.exp().sum();
    const e = thrown(() => s.backward(), 'backward without grad');
    assert.ok(e instanceof AutogradError, `expected AutogradError, got ${e.name}`);
    assert.match(e.message, /backward/);
    assert.match(e.message, /require/);
    s.dispose();
    for (const x of made.splice(0)) x.dispose();
  });

  test('error: item() of a multi-element tensor rejects naming item and the shape', async () => {
    const a = make([2, 2]);
    await assert.rejects(
      a.item(),
      (err: Error) => err instanceof OpError && err.message.includes('item') && err.message.includes('[2, 2]'),
    );
    for (const x of made.splice(0)) x.dispose();
  });
});
