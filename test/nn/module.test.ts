// Tests of Module: PyTorch-style dotted names and order, buffers, stateDict / loadStateDict round trips
// and their error messages, train/eval propagation, apply, zeroGrad, numParameters, dispose and tied weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CausalSelfAttention,
  Dropout,
  Embedding,
  F,
  GELU,
  LayerNorm,
  Linear,
  Module,
  Sequential,
  isParameter,
  liveTensors,
  ones,
  parameter,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../../src/index.js';
import { randomND, testRng } from '../helpers/random.js';
import { toTensor } from './util.js';

class Block extends Module {
  ln_1 = new LayerNorm(4);
  attn = new CausalSelfAttention(4, 2);
  ln_2 = new LayerNorm(4);
  mlp = new Sequential(new Linear(4, 8), new GELU(), new Linear(8, 4));
  drop = new Dropout(0.1);

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = x.add(this.attn.forward(this.ln_1.forward(x)));
      return h.add(this.drop.forward(this.mlp.forward(this.ln_2.forward(h))));
    });
  }
}

class Net extends Module {
  wte = new Embedding(10, 4);
  h = [new Block(), new Block()];
  ln_f = new LayerNorm(4);
  scale = this.param(ones([1]));
  notAParam = zeros([2]); // a plain tensor field: neither parameter nor buffer
  label = 'net'; // other fields are skipped
  lm_head = new Linear(4, 10, { bias: false });

  constructor() {
    super();
    this.registerBuffer('steps', zeros([1], { dtype: 'int32' }));
    this.registerBuffer('cache', zeros([3]), { persistent: false });
    this.lm_head.weight.dispose();
    this.lm_head.weight = this.wte.weight; // tied, as GPT-2
  }

  forward(ids: Tensor): Tensor {
    return tidy(() => {
      let x = this.wte.forward(ids);
      for (const b of this.h) x = b.forward(x);
      return this.lm_head.forward(this.ln_f.forward(x)).mul(this.scale);
    });
  }
}

const blockNames = (p: string) => [
  `${p}.ln_1.weight`, `${p}.ln_1.bias`, `${p}.attn.c_attn.weight`, `${p}.attn.c_attn.bias`, `${p}.attn.c_proj.weight`,
  `${p}.attn.c_proj.bias`, `${p}.ln_2.weight`, `${p}.ln_2.bias`, `${p}.mlp.0.weight`, `${p}.mlp.0.bias`, `${p}.mlp.2.weight`, `${p}.mlp.2.bias`,
]; // prettier-ignore

test('namedParameters: dotted PyTorch names in PyTorch order (own params first, then children), tied once', () => {
  const net = new Net();
  // torch: named_parameters walks named_modules (pre-order), each module's own parameters first
  const expected = ['scale', 'wte.weight', ...blockNames('h.0'), ...blockNames('h.1'), 'ln_f.weight', 'ln_f.bias'];
  assert.deepEqual(
    net.namedParameters().map(([n]) => n),
    expected,
  );
  assert.equal(net.parameters().length, expected.length);
  assert.ok(net.parameters().every((p) => p.requiresGrad && isParameter(p)));
  assert.ok(!isParameter(net.notAParam));
  const perBlock = 2 * (4 * 2) + (4 * 12 + 12) + (4 * 4 + 4) + (4 * 8 + 8) + (8 * 4 + 4); // two LayerNorms, attn, mlp
  assert.equal(net.numParameters(), 1 + 40 + 2 * perBlock + 8);
  assert.deepEqual(
    net
      .namedParameters('model')
      .slice(0, 2)
      .map(([n]) => n),
    ['model.scale', 'model.wte.weight'],
  );
  assert.deepEqual(
    net.h[1]!.attn.namedParameters().map(([n]) => n),
    ['c_attn.weight', 'c_attn.bias', 'c_proj.weight', 'c_proj.bias'],
  );
});

test('modules / children / buffers / stateDict: PyTorch order, tied weights under both names, live tensors', () => {
  const net = new Net();
  assert.deepEqual(
    net.namedChildren().map(([n]) => n),
    ['wte', 'h.0', 'h.1', 'ln_f', 'lm_head'],
  );
  assert.equal(net.children().length, 5);
  const names = net.namedModules().map(([n]) => n);
  assert.deepEqual(names.slice(0, 8), [
    '',
    'wte',
    'h.0',
    'h.0.ln_1',
    'h.0.attn',
    'h.0.attn.c_attn',
    'h.0.attn.c_proj',
    'h.0.attn.attn_dropout',
  ]);
  assert.equal(net.modules().length, names.length);
  assert.deepEqual(
    net.namedBuffers().map(([n]) => n),
    ['steps', 'cache'],
  );
  const sd = net.stateDict();
  const keys = [...sd.keys()];
  // torch state_dict: per module its parameters, then its persistent buffers, then the children
  assert.deepEqual(keys.slice(0, 3), ['scale', 'steps', 'wte.weight']);
  assert.ok(!keys.includes('cache'), 'non-persistent buffers are not saved');
  assert.equal(keys[keys.length - 1], 'lm_head.weight');
  assert.equal(sd.get('lm_head.weight'), sd.get('wte.weight'), 'tied weight under both names, same tensor');
  assert.equal(sd.get('h.0.ln_1.weight'), net.h[0]!.ln_1.weight, 'live tensor, not a copy');
});

test('to(): moving to the device the module is already on keeps every tensor', async () => {
  const net = new Net();
  const params = net.parameters();
  assert.equal(await net.to('cpu'), net);
  assert.deepEqual(net.parameters(), params);
  assert.equal(net.lm_head.weight, net.wte.weight, 'still tied');
});

test('loadStateDict: round trip copies values in place; the model then computes the same outputs', async (t) => {
  const rng = testRng('nn module round trip', t);
  const a = new Net().eval();
  const b = new Net().eval();
  const ids = tensor(
    [
      [1, 2, 3],
      [4, 5, 9],
    ],
    { dtype: 'int32' },
  );
  const ya = await a.forward(ids).toArray();
  assert.notDeepEqual(await b.forward(ids).toArray(), ya, 'independent inits differ');
  const bWeight = b.h[0]!.attn.c_attn.weight;
  const res = b.loadStateDict(a.stateDict());
  assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
  assert.equal(b.h[0]!.attn.c_attn.weight, bWeight, 'parameters are updated in place, not replaced');
  assert.notEqual(bWeight, a.h[0]!.attn.c_attn.weight);
  assert.deepEqual(await b.forward(ids).toArray(), ya);
  // a copy, not an alias: changing a afterwards leaves b alone
  a.loadStateDict(
    new Map([...a.stateDict()].map(([k, v]) => [k, k === 'ln_f.bias' ? toTensor(randomND(rng, [4])) : v])),
  );
  assert.notDeepEqual(await a.forward(ids).toArray(), ya);
  assert.deepEqual(await b.forward(ids).toArray(), ya);
  // a plain object works too
  b.loadStateDict(Object.fromEntries(a.stateDict()));
  assert.deepEqual(await b.forward(ids).toArray(), await a.forward(ids).toArray());
});

test('loadStateDict: clear errors (missing, unexpected, shape, dtype) and nothing copied on failure', async () => {
  const net = new Net();
  const before = await net.ln_f.bias!.toArray();
  const sd = new Map(net.stateDict());
  const other = new Map([...new Net().stateDict()]);
  other.delete('h.1.attn.c_proj.bias');
  assert.throws(() => net.loadStateDict(other), /loadStateDict: missing keys: h\.1\.attn\.c_proj\.bias/);
  assert.deepEqual(await net.ln_f.bias!.toArray(), before, 'nothing copied when the check fails');
  const extra = new Map(sd).set('h.2.ln_1.weight', ones([4]));
  assert.throws(() => net.loadStateDict(extra), /unexpected keys: h\.2\.ln_1\.weight/);
  assert.deepEqual(net.loadStateDict(extra, { strict: false }), {
    missingKeys: [],
    unexpectedKeys: ['h.2.ln_1.weight'],
  });
  const missing = new Map(sd);
  missing.delete('scale');
  assert.deepEqual(net.loadStateDict(missing, { strict: false }).missingKeys, ['scale']);
  const badShape = new Map(sd).set('h.0.attn.c_attn.weight', zeros([12, 5]));
  assert.throws(
    () => net.loadStateDict(badShape),
    /size mismatch for h\.0\.attn\.c_attn\.weight: checkpoint has shape \[12, 5\], the module has \[12, 4\]/,
  );
  assert.throws(
    () => net.loadStateDict(badShape, { strict: false }),
    /size mismatch/,
    'shape errors are raised even when not strict',
  );
  const badDtype = new Map(sd).set('steps', zeros([1]));
  assert.throws(
    () => net.loadStateDict(badDtype),
    /dtype mismatch for steps: checkpoint has float32, the module has int32/,
  );
});

test('train / eval propagate to every descendant; apply visits children before parents', () => {
  const net = new Net();
  assert.ok(net.modules().every((m) => m.training));
  net.eval();
  assert.ok(net.modules().every((m) => !m.training));
  assert.equal(net.h[1]!.attn.attn_dropout.training, false);
  net.train();
  assert.ok(net.modules().every((m) => m.training));
  const order: string[] = [];
  // torch: for child in children(): child.apply(fn); then fn(self)
  new Sequential(new Linear(1, 1), new Sequential(new GELU(), new Dropout()), new GELU()).apply((m) =>
    order.push(m.constructor.name),
  );
  assert.deepEqual(order, ['Linear', 'GELU', 'Dropout', 'Sequential', 'GELU', 'Sequential']);
});

test('zeroGrad: zeroes gradients in place (same tensors), or frees them with setToNone', async () => {
  const net = new Net();
  const ids = tensor([[1, 2, 3]], { dtype: 'int32' });
  tidy(() => F.crossEntropy(net.forward(ids), tensor([[2, 3, 4]], { dtype: 'int32' })).backward());
  const grads = net.parameters().map((p) => p.grad);
  assert.ok(
    grads.every((g) => g !== null),
    'every parameter got a gradient',
  );
  assert.ok((await grads[1]!.toArray()).some((v) => v !== 0));
  net.zeroGrad();
  net.parameters().forEach((p, i) => assert.equal(p.grad, grads[i], 'same gradient tensor'));
  for (const p of net.parameters()) assert.ok((await p.grad!.toArray()).every((v) => v === 0));
  net.zeroGrad({ setToNone: true });
  assert.ok(net.parameters().every((p) => p.grad === null));
});

test('parameter() / registerBuffer survive an enclosing tidy; dispose frees params and buffers', () => {
  const before = liveTensors();
  const net = tidy(() => new Net());
  assert.ok(net.parameters().every((p) => !p.disposed));
  assert.ok(net.buffers().every((b) => !b.disposed));
  net.dispose();
  assert.ok(net.parameters().every((p) => p.disposed));
  assert.ok(net.buffers().every((b) => b.disposed));
  net.notAParam.dispose();
  assert.equal(liveTensors(), before, 'no tensor left behind');
  // arrays of parameters are named by position, like a ParameterList
  class Mixed extends Module {
    ws = [parameter(ones([2])), parameter(zeros([3]))];
    lin = new Linear(2, 2);
  }
  const mixed = new Mixed();
  assert.deepEqual(
    mixed.namedParameters().map(([n]) => n),
    ['ws.0', 'ws.1', 'lin.weight', 'lin.bias'],
  );
  mixed.dispose();
  const leaf = tensor([1, 2]).mul(2);
  assert.throws(() => parameter(leaf.add(ones([2], { requiresGrad: true }))), /is not a leaf/);
});
