// The Optimizer base: parameter validation, group defaults, lr get/set, zeroGrad in place, skipping
// parameters without gradients, state surviving the caller's tidy, no host reads, and state dicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, AdamW, SGD, type Optimizer } from '../../src/optim/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { getBackend, isGradEnabled, noGrad, tensor, tidy } from '../../src/tensor/index.js';
import { testRng, type Rng } from '../helpers/random.js';
import { f32Normals, param, setGrad, values } from './reference.js';

test('rejects parameters that cannot be optimized, with clear errors', () => {
  const ok = param([1, 2], [2]);
  assert.throws(() => new SGD([]), /SGD: got an empty parameter list/);
  assert.throws(
    () => new SGD([tensor([1, 2], { dtype: 'int32' })]),
    /parameter 0 of group 0 \(shape \[2\], int32\) is not a float tensor/,
  );
  assert.throws(
    () => new Adam([ok, tensor([1, 2])]),
    /parameter 1 of group 0 \(shape \[2\], float32\) does not require grad/,
  );
  assert.throws(() => new SGD([ok.mul(2)]), /is not a leaf tensor/);
  assert.throws(() => new SGD([ok, ok]), /appears more than once/);
  assert.throws(
    () => new SGD([{ params: [ok] }, { params: [ok] }]),
    /parameter 0 of group 1 .* appears more than once/,
  );
  assert.throws(() => new SGD([{ params: [] }]), /parameter group 0 has no parameters/);
  assert.throws(() => new SGD([ok, { params: [param([1], [1])] }] as never), /not a mix/);
  const gone = param([1], [1]);
  gone.dispose();
  assert.throws(() => new SGD([gone]), /was disposed/);
});

test('rejects invalid hyperparameters', () => {
  const p = param([1], [1]);
  assert.throws(() => new SGD([p], { lr: -0.1 }), /SGD: invalid learning rate -0.1/);
  assert.throws(() => new AdamW([{ params: [p], lr: NaN }]), /AdamW: invalid learning rate NaN/);
  assert.throws(() => new SGD([p], { momentum: -1 }), /invalid momentum -1/);
  assert.throws(() => new SGD([p], { nesterov: true }), /Nesterov momentum needs momentum > 0 and dampening 0/);
  assert.throws(() => new SGD([p], { nesterov: true, momentum: 0.9, dampening: 0.1 }), /Nesterov/);
  assert.throws(() => new Adam([p], { betas: [1, 0.9] }), /invalid beta1 1; it must be in \[0, 1\)/);
  assert.throws(() => new Adam([p], { betas: [0.9, -0.1] }), /invalid beta2 -0.1/);
  assert.throws(() => new Adam([p], { eps: -1 }), /invalid eps -1/);
  assert.throws(() => new AdamW([p], { weightDecay: -1 }), /invalid weightDecay -1/);
  const opt = new SGD([p], { lr: 0.1 });
  assert.throws(() => (opt.lr = -1), /invalid learning rate -1/);
  assert.equal(opt.lr, 0.1, 'a rejected lr changes nothing');
});

test('groups take the defaults for options they leave out; lr sets every group', () => {
  const [a, b, c] = [param([1], [1]), param([2], [1]), param([3], [1])];
  const betas: [number, number] = [0.8, 0.9];
  const opt = new Adam([{ params: [a] }, { params: [b, c], lr: 0.5, betas }], { lr: 0.1, weightDecay: 0.2 });
  const [g0, g1] = opt.paramGroups;
  assert.deepEqual(
    { ...g0, params: g0!.params.length },
    { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.2, amsgrad: false, maximize: false, params: 1 },
  );
  assert.deepEqual(
    { ...g1, params: g1!.params.length },
    { lr: 0.5, betas: [0.8, 0.9], eps: 1e-8, weightDecay: 0.2, amsgrad: false, maximize: false, params: 2 },
  );
  betas[0] = 0.1;
  assert.equal(g1!.betas[0], 0.8, 'the group copied the betas array');
  assert.equal(opt.lr, 0.1);
  opt.lr = 0.03;
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    [0.03, 0.03],
  );
  assert.deepEqual(opt.params(), [a, b, c]);
  opt.addParamGroup({ params: param([4], [1]), eps: 1e-6 });
  assert.equal(opt.paramGroups[2]!.eps, 1e-6);
  assert.equal(opt.paramGroups[2]!.lr, 0.1, 'later groups take the defaults, not the current lr');
  const single = new SGD(a, { lr: 0.2 });
  assert.deepEqual(single.params(), [a], 'a single tensor is accepted');
});

test('zeroGrad zeroes the gradient buffers in place; setToNone frees them', async () => {
  const p = param([1, 2, 3], [3]);
  const q = param([4], [1]);
  const opt = new SGD([p, q]);
  setGrad(p, [1, 2, 3]);
  const buf = p.grad!;
  opt.zeroGrad();
  assert.equal(p.grad, buf, 'same gradient tensor, reused by the next backward');
  assert.equal(q.grad, null, 'parameters without a gradient are left alone');
  assert.deepEqual(Array.from(await p.grad.toArray()), [0, 0, 0]);
  opt.zeroGrad({ setToNone: true });
  assert.equal(p.grad, null);
  assert.ok(buf.disposed, 'setToNone disposes the old gradient');
});

test('step skips parameters without gradients; errors on mismatched gradients', async () => {
  const p = param([1, 2], [2]);
  const q = param([3], [1]);
  const opt = new SGD([p, q], { lr: 0.5, momentum: 0.9 });
  setGrad(p, [2, 2]);
  opt.step();
  assert.deepEqual(Array.from(await p.toArray()), [0, 1]);
  assert.deepEqual(Array.from(await q.toArray()), [3]);
  assert.deepEqual(Object.keys(opt.stateDict().state), ['0'], 'no state for the parameter without a gradient');
  assert.equal(opt.stepCount, 1);
  q.grad = tensor([1, 2]);
  assert.throws(() => opt.step(), /SGD.step: gradient shape \[2\] does not match its parameter's \[1\]/);
});

test("state created by step survives the caller's tidy; step works while grad recording is on", async () => {
  const p = param([1, 2], [2]);
  const opt = new AdamW([p], { lr: 0.1 });
  tidy(() => {
    assert.ok(isGradEnabled());
    const loss = p.mul(p).sum();
    setGrad(p, [2, 4]); // d(sum p²)/dp, set by hand: this test is about scopes, not autograd
    loss.dispose();
    assert.equal(opt.step(), undefined);
  });
  const st = opt.stateDict().state[0]!;
  for (const t of Object.values(st.tensors)) assert.ok(!t.disposed, 'state tensors are kept');
  assert.ok(!p.grad!.disposed);
  opt.step(); // the second step updates the surviving state in place
  assert.equal(opt.stateDict().state[0]!.tensors.expAvg, st.tensors.expAvg, 'same state tensor');
  assert.equal(opt.stepCount, 2);
  assert.ok((await values(p)).every(Number.isFinite));
});

test('step does not read from the device', () => {
  const backend = getBackend('cpu');
  for (const make of [
    (ps: Tensor[]) => new SGD(ps, { momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
    (ps: Tensor[]) => new Adam(ps, { amsgrad: true, weightDecay: 0.1 }),
  ]) {
    const p = param([1, 2, 3], [3]);
    const opt = make([p]);
    setGrad(p, [1, -1, 0.5]);
    const before = backend.stats().bytesDownloaded;
    for (let i = 0; i < 3; i++) opt.step();
    assert.equal(backend.stats().bytesDownloaded, before, `${opt.name}: no bytes read back`);
  }
});

/** Runs `steps` steps of `opt` over `params` with gradients drawn from `rng`. */
function run(opt: Optimizer, params: readonly Tensor[], rng: Rng, steps: number): void {
  for (let s = 0; s < steps; s++) {
    for (const p of params) setGrad(p, f32Normals(rng, p.size));
    opt.step();
  }
}

/** Fresh parameters holding the current values of `params`. */
async function copies(params: readonly Tensor[]): Promise<Tensor[]> {
  return Promise.all(params.map(async (p) => param(await p.toArray(), p.shape)));
}

const ROUND_TRIPS: [string, (ps: Tensor[], lr: number) => Optimizer][] = [
  [
    'SGD',
    (ps: Tensor[], lr: number) =>
      new SGD([{ params: ps.slice(0, 1) }, { params: ps.slice(1), lr: lr / 2 }], { lr, momentum: 0.9, dampening: 0.1 }),
  ],
  [
    'AdamW',
    (ps: Tensor[], lr: number) =>
      new AdamW([{ params: ps.slice(0, 1) }, { params: ps.slice(1), lr: lr / 2, betas: [0.8, 0.99] }], {
        lr,
        amsgrad: true,
      }),
  ],
];
for (const [name, make] of ROUND_TRIPS) {
  test(`${name} stateDict/loadStateDict round trip continues identically`, async (t) => {
    const rng = testRng(`state dict ${name}`, t);
    const a = [param(f32Normals(rng, 6), [2, 3]), param(f32Normals(rng, 4), [4]), param(f32Normals(rng, 1), [1])];
    const optA = make(a, 0.05);
    run(optA, a, rng, 3);
    const sd = optA.stateDict();
    assert.deepEqual(JSON.parse(JSON.stringify(sd.paramGroups)), sd.paramGroups, 'group options are plain JSON');
    assert.deepEqual(
      sd.paramGroups.map((g) => g.params),
      [[0], [1, 2]],
    );
    const b = await copies(a);
    const optB = make(b, 0.9); // different lr: loading restores the saved options
    run(optB, b, testRng('other history', undefined), 1); // existing state is overwritten in place
    noGrad(() => b.forEach((p, i) => p.copy_(a[i]!))); // undo that history's parameter update
    optB.loadStateDict(sd);
    assert.deepEqual(
      optB.paramGroups.map((g) => g.lr),
      [0.05, 0.025],
    );
    const sdB = optB.stateDict();
    for (const [i, st] of Object.entries(sd.state)) {
      assert.equal(sdB.state[Number(i)]!.step, st.step);
      for (const [k, ten] of Object.entries(st.tensors)) {
        assert.notEqual(sdB.state[Number(i)]!.tensors[k], ten, 'the state was copied, not aliased');
        assert.deepEqual(await values(sdB.state[Number(i)]!.tensors[k]!), await values(ten));
      }
    }
    const seed = rng.int(0, 2 ** 31);
    run(optA, a, testRng(`continue ${seed}`, undefined), 3);
    run(optB, b, testRng(`continue ${seed}`, undefined), 3);
    for (let i = 0; i < a.length; i++)
      assert.deepEqual(await values(b[i]!), await values(a[i]!), `param ${i} after resuming`);
    optA.loadStateDict(optA.stateDict()); // loading its own dict is a no-op
    assert.equal(optA.stepCount, 6);
  });
}

test('loadStateDict rejects a dict that does not fit', () => {
  const p = param([1, 2], [2]);
  const sgd = new SGD([p], { momentum: 0.9 });
  setGrad(p, [1, 1]);
  sgd.step();
  const adam = new Adam([param([1, 2], [2])]);
  assert.throws(
    () => adam.loadStateDict(sgd.stateDict() as never),
    /Adam.loadStateDict: unknown state 'momentumBuffer' for parameter 0 \(Adam keeps: expAvg, expAvgSq, maxExpAvgSq\)/,
  );
  assert.throws(
    () => new SGD([param([1, 2, 3], [3])], { momentum: 0.9 }).loadStateDict(sgd.stateDict()),
    /state 'momentumBuffer' of parameter 0 has shape \[2\], the parameter \[3\]/,
  );
  assert.throws(
    () => new SGD([{ params: [param([1], [1])] }, { params: [param([1], [1])] }]).loadStateDict(sgd.stateDict()),
    /the dict has 1 parameter groups, this optimizer 2/,
  );
  assert.throws(
    () => new SGD([param([1], [1]), param([1], [1])]).loadStateDict(sgd.stateDict()),
    /group 0 has 1 parameters in the dict, 2 here/,
  );
  const bad = sgd.stateDict();
  bad.paramGroups[0]!.lr = -1;
  const target = new SGD([param([0, 0], [2])], { momentum: 0.9 });
  assert.throws(() => target.loadStateDict(bad), /invalid learning rate -1/);
  assert.equal(target.stepCount, 0, 'a rejected dict changes nothing');
});

test('dispose frees the state; the next step starts fresh', () => {
  const p = param([1], [1]);
  const opt = new Adam([p]);
  setGrad(p, [1]);
  opt.step();
  const st = opt.stateDict().state[0]!;
  opt.dispose();
  for (const t of Object.values(st.tensors)) assert.ok(t.disposed);
  assert.equal(opt.stepCount, 0);
  opt.step();
  assert.equal(opt.stepCount, 1);
});
