// convTranspose2d (torch.nn.functional.conv_transpose2d) and nn.ConvTranspose2d on every backend:
// forward and input/weight/bias gradients against PyTorch (test/fixtures/cnn/convtranspose.safetensors,
// made by scripts/make-cnn-fixtures.py: stride 2 with outputPadding, rectangular strides, groups,
// dilation, depthwise), finite-difference gradchecks of a float64 scatter-form oracle written here, the
// layer's names, shapes and PyTorch init bound, and the argument errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  ConvTranspose2d,
  F,
  Generator,
  OpError,
  convTranspose2d,
  tensor,
  tidy,
  type ConvTranspose2dOptions,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import { openSafetensors } from '../../src/io/safetensors-node.js';
import type { SafetensorsReader } from '../../src/io/safetensors.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng } from '../helpers/random.js';

const DIR = fileURLToPath(new URL('../fixtures/cnn', import.meta.url));
let fx: SafetensorsReader;
before(async () => {
  fx = await openSafetensors(`${DIR}/convtranspose.safetensors`);
});
after(async () => {
  await fx.close();
});

/** torch's option names in the fixture metadata, as convTranspose2d's. */
function optsOf(o: Record<string, number | number[]>): ConvTranspose2dOptions {
  const p = (v: number | number[] | undefined) => v as number | [number, number];
  return {
    stride: p(o.stride),
    padding: p(o.padding),
    outputPadding: p(o.output_padding),
    dilation: p(o.dilation),
    groups: o.groups as number,
  };
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

/**
 * Float64 transposed convolution in scatter form, straight from the definition: every input element
 * x[n, ci, i, j] adds x * w[ci, co, p, q] to y[n, g*Cog + co, i*sh - ph + p*dh, j*sw - pw + q*dw].
 */
function convTransposeRef(x: O.ND, w: O.ND, b: O.ND | null, o: ConvTranspose2dOptions): O.ND {
  const [n, cin, h, wd] = x.shape as [number, number, number, number];
  const [, cog, kh, kw] = w.shape as [number, number, number, number];
  const [s, pd, dl, op] = [pair(o.stride, 1), pair(o.padding, 0), pair(o.dilation, 1), pair(o.outputPadding, 0)];
  const groups = o.groups ?? 1;
  const cig = cin / groups;
  const oh = (h - 1) * s[0] - 2 * pd[0] + dl[0] * (kh - 1) + op[0] + 1;
  const ow = (wd - 1) * s[1] - 2 * pd[1] + dl[1] * (kw - 1) + op[1] + 1;
  const cout = cog * groups;
  const y = O.nd([n, cout, oh, ow]);
  for (let ni = 0; ni < n; ni++)
    for (let ci = 0; ci < cin; ci++) {
      const g = Math.floor(ci / cig);
      for (let i = 0; i < h; i++)
        for (let j = 0; j < wd; j++) {
          const xv = x.data[((ni * cin + ci) * h + i) * wd + j]!;
          for (let co = 0; co < cog; co++)
            for (let p = 0; p < kh; p++)
              for (let q = 0; q < kw; q++) {
                const [yi, yj] = [i * s[0] - pd[0] + p * dl[0], j * s[1] - pd[1] + q * dl[1]];
                if (yi < 0 || yi >= oh || yj < 0 || yj >= ow) continue;
                const wv = w.data[((ci * cog + co) * kh + p) * kw + q]!;
                y.data[((ni * cout + g * cog + co) * oh + yi) * ow + yj]! += xv * wv;
              }
        }
    }
  if (b) for (let i = 0; i < y.data.length; i++) y.data[i]! += b.data[Math.floor(i / (oh * ow)) % cout]!;
  return y;
}

const put = (a: O.ND, device: DeviceName, requiresGrad = false): Tensor =>
  tensor(a.data, { shape: a.shape, device, requiresGrad });

forEachBackend((device) => {
  test('convTranspose2d forward and input/weight/bias gradients match PyTorch', async () => {
    const cases = JSON.parse(fx.header.metadata.convt!) as Record<string, Record<string, number | number[]>>;
    assert.ok(Object.keys(cases).length >= 5);
    const ref = async (name: string) => {
      const t = await fx.read(name);
      const a = await t.toArray();
      t.dispose();
      return a;
    };
    for (const [name, o] of Object.entries(cases)) {
      const p = `convt.${name}.`;
      const hasBias = fx.names().includes(p + 'b');
      const [x, w, b] = await Promise.all(
        [p + 'x', p + 'w', ...(hasBias ? [p + 'b'] : [])].map(async (k) => {
          const t = await fx.read(k, { device });
          t.requiresGrad = true;
          return t;
        }),
      );
      const r = await fx.read(p + 'r', { device });
      const y = F.convTranspose2d(x!, w!, b ?? null, optsOf(o));
      tidy(() => y.mul(r).sum().backward());
      const what = `${device} convTranspose2d ${name}`;
      const close = async (t: Tensor, k: string, atol: number) =>
        assertClose(await t.toArray(), await ref(p + k), {
          dtype: 'float32',
          rtol: 1e-5,
          atol,
          what: `${what} ${k}`,
          shape: t.shape,
        });
      await close(y, 'y', 1e-5);
      await close(x!.grad!, 'gx', 1e-5);
      await close(w!.grad!, 'gw', 1e-4);
      if (b) await close(b.grad!, 'gb', 1e-4);
      for (const t of [x, w, b, r, y]) t?.dispose();
    }
  });

  test('convTranspose2d matches a float64 scatter-form oracle; gradients match finite differences', async (t) => {
    const rng = testRng(`convTranspose2d gradcheck ${device}`, t);
    const cases: [number[], number[], ConvTranspose2dOptions][] = [
      [[2, 2, 3, 2], [2, 3, 2, 3], { stride: 2, padding: [1, 0], outputPadding: 1 }],
      [[1, 4, 2, 3], [4, 1, 3, 2], { stride: [1, 2], dilation: [2, 1], groups: 2, outputPadding: [1, 0] }],
    ];
    for (const [xs, ws, o] of cases) {
      const x = randomND(rng, xs);
      const w = randomND(rng, ws, { low: -0.7, high: 0.7 });
      const b = randomND(rng, [ws[1]! * (o.groups ?? 1)]);
      const [X, W, Bt] = [put(x, device, true), put(w, device, true), put(b, device, true)];
      const y = convTranspose2d(X, W, Bt, o);
      const want = convTransposeRef(x, w, b, o);
      const what = `convTranspose2d x [${xs.join(', ')}] w [${ws.join(', ')}]`;
      assertClose(await y.toArray(), want, { dtype: 'float32', atol: 1e-5, what, shape: y.shape });
      const up = randomND(rng, want.shape);
      y.backward(put(up, device));
      const got = await Promise.all([X, W, Bt].map((p) => p.grad!.toArray()));
      const f = ([xa, wa, ba]: O.ND[]) => convTransposeRef(xa!, wa!, ba!, o);
      assertGradClose(got, f, [x, w, b], up, { rtol: 1e-3, atol: 1e-4, what });
      for (const u of [X, W, Bt, y]) u.dispose();
    }
  });

  test('ConvTranspose2d: torch names, weight (in, out/groups, KH, KW), init bound 1/sqrt(out/groups*KH*KW)', async () => {
    const m = new ConvTranspose2d(4, 6, [3, 2], {
      stride: 2,
      outputPadding: 1,
      groups: 2,
      device,
      generator: new Generator(1),
    });
    assert.deepEqual(
      m.namedParameters().map(([k, p]) => [k, p.shape]),
      [
        ['weight', [4, 3, 3, 2]],
        ['bias', [6]],
      ],
    );
    const bound = 1 / Math.sqrt(3 * 3 * 2);
    for (const p of m.parameters()) {
      const v = await p.toArray();
      assert.ok(
        v.every((e) => Math.abs(e) <= bound),
        `${fmt(p.shape)} within ${bound}`,
      );
      assert.ok(
        v.some((e) => Math.abs(e) > bound / 2),
        'spread over the range',
      );
    }
    const x = tensor(
      Array.from({ length: 2 * 4 * 3 * 3 }, (_, i) => Math.sin(i)),
      { shape: [2, 4, 3, 3], device },
    );
    const y = m.forward(x);
    assert.deepEqual(y.shape, [2, 6, 8, 7]); // (3 - 1) * 2 + dilation * (k - 1) + outputPadding + 1
    const want = convTransposeRef(
      O.nd(x.shape, await x.toArray()),
      O.nd(m.weight.shape, await m.weight.toArray()),
      O.nd([6], await m.bias!.toArray()),
      { stride: 2, outputPadding: 1, groups: 2 },
    );
    assertClose(await y.toArray(), want, { dtype: 'float32', atol: 1e-5, what: 'ConvTranspose2d forward' });
    for (const u of [x, y]) u.dispose();
    m.dispose();
  });

  test('convTranspose2d refuses bad arguments, naming the op', () => {
    const x = tensor(new Float32Array(2 * 4 * 3 * 3), { shape: [2, 4, 3, 3], device });
    const w = tensor(new Float32Array(4 * 2 * 3 * 3), { shape: [4, 2, 3, 3], device });
    const throwsOp = (f: () => unknown, re: RegExp) =>
      assert.throws(f, (e: unknown) => e instanceof OpError && /convTranspose2d/.test(e.message) && re.test(e.message));
    throwsOp(() => convTranspose2d(x, w, null, { stride: 2, outputPadding: 2 }), /outputPadding/);
    throwsOp(() => convTranspose2d(x, w, null, { groups: 3 }), /groups/);
    throwsOp(() => convTranspose2d(x, w.reshape([2, 4, 3, 3]), null), /Cin/);
    throwsOp(() => convTranspose2d(x, w, tensor([1, 2, 3], { device })), /bias/);
    throwsOp(() => convTranspose2d(x, w, null, { padding: 4 }), /output size/);
    assert.throws(() => new ConvTranspose2d(4, 6, 3, { groups: 4 }), /divisible/);
    x.dispose();
    w.dispose();
  });
});

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
