// Playground for the fused row ops: F.crossEntropy and F.layerNorm (fused kernels) against the tensor-op
// compositions they replaced (v0, kept here as the reference), forward + backward, in the same process
// and alternating: a correctness check, dispatches per call and median wall time.
// Run: node --import tsx bench/kernels/fused-rows.ts [--webgpu] [--quick]
// (no GPU: TL_WEBGPU_BACKEND=opengles EGL_PLATFORM=surfaceless for Mesa llvmpipe; times then only show the path works.)
import process from 'node:process';
import { F, cast, gather, getBackend, initWebGPU, tensor, tidy, where, type Tensor } from '../../src/index.js';

const quick = process.argv.includes('--quick');
const device = process.argv.includes('--webgpu') ? 'webgpu' : 'cpu';
if (device === 'webgpu') await initWebGPU();
const be = getBackend(device);
console.log(`device: ${be.caps.description}`);

/** v0: cross-entropy as the composition of logSoftmax, gather and where (mean over non-ignored rows). */
function v0CrossEntropy(logits: Tensor, targets: Tensor, eps: number): Tensor {
  return tidy(() => {
    const C = logits.shape[1]!;
    const valid = targets.ne(-100);
    const safe = where(valid, targets, 0).reshape([-1, 1]);
    const lp = logits.logSoftmax(-1);
    let loss = gather(lp, -1, safe).squeeze(-1).neg();
    if (eps > 0) loss = loss.mul(1 - eps).sub(lp.sum(-1).mul(eps / C));
    return where(valid, loss, 0).sum().div(cast(valid.sum(), 'float32'));
  });
}

/** v0: layer norm as mean, centred square mean, rsqrt and the affine ops. */
function v0LayerNorm(x: Tensor, w: Tensor, b: Tensor): Tensor {
  return tidy(() => {
    const d = x.sub(x.mean(-1, true));
    return d.mul(d.mul(d).mean(-1, true).add(1e-5).rsqrt()).mul(w).add(b);
  });
}

/** The leaves' gradients, detached from them (so the next run starts from no gradient). */
function take(leaves: Tensor[]): Tensor[] {
  return leaves.map((l) => {
    const g = l.grad!;
    l.grad = null;
    return g;
  });
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

interface Case {
  name: string;
  /** Sub-millisecond calls: time more rounds. */
  small: boolean;
  /** Forward + backward of one variant; returns the output and the gradients (taken from the leaves; the caller disposes them). */
  run: (fused: boolean) => Tensor[];
}

function crossEntropyCase(n: number, c: number): Case {
  const z = tensor(Float32Array.from({ length: n * c }, (_, i) => Math.sin(i * 0.37) * 3), { shape: [n, c], device, requiresGrad: true }); // prettier-ignore
  const t = tensor(Int32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? -100 : (i * 7919) % c)), { shape: [n], dtype: 'int32', device }); // prettier-ignore
  return {
    name: `crossEntropy (${n}, ${c}) smoothing 0.1`,
    small: n * c < 1e5,
    run: (fused) => {
      const loss = tidy(() => (fused ? F.crossEntropy(z, t, { labelSmoothing: 0.1 }) : v0CrossEntropy(z, t, 0.1)));
      loss.backward();
      return [loss, ...take([z])];
    },
  };
}

function layerNormCase(rows: number, d: number): Case {
  const opt = (f: (i: number) => number, shape: number[]) =>
    tensor(Float32Array.from({ length: shape[0]! * (shape[1] ?? 1) }, (_, i) => f(i)), { shape, device, requiresGrad: true }); // prettier-ignore
  const x = opt((i) => Math.sin(i * 0.37) * 3, [rows, d]);
  const w = opt((i) => 1 + i / d, [d]);
  const b = opt((i) => Math.cos(i), [d]);
  const g = tensor(
    Float32Array.from({ length: rows * d }, (_, i) => Math.cos(i * 0.11)),
    { shape: [rows, d], device },
  );
  return {
    name: `layerNorm (${rows}, ${d}) with weight and bias`,
    small: rows * d < 1e5,
    run: (fused) => {
      const y = tidy(() => (fused ? F.layerNorm(x, d, w, b) : v0LayerNorm(x, w, b)));
      y.backward(g);
      return [y, ...take([x, w, b])];
    },
  };
}

/** The largest |a - b| / (1 + |b|) over the results of the two variants. */
async function maxDiff(a: Tensor[], b: Tensor[]): Promise<number> {
  let worst = 0;
  for (let k = 0; k < a.length; k++) {
    const [x, y] = [await a[k]!.toArray(), await b[k]!.toArray()];
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / (1 + Math.abs(y[i]!)));
  }
  return worst;
}

const cases: Case[] = quick
  ? [crossEntropyCase(256, 2048), layerNormCase(512, 256)]
  : [crossEntropyCase(64, 29), crossEntropyCase(1024, 8192), layerNormCase(32, 16), layerNormCase(2048, 768)];
console.log('case                                        v0 disp  fused disp   v0 ms  fused ms  speedup  max rel diff');
for (const c of cases) {
  const counts = [0, 0];
  const times: number[][] = [[], []];
  let diff = 0;
  const rounds = quick ? 5 : c.small ? 41 : 11;
  for (let r = -1; r < rounds; r++) {
    const outs: Tensor[][] = [];
    for (const fused of r % 2 ? [false, true] : [true, false]) {
      const d0 = be.stats().dispatches;
      const t0 = performance.now();
      const res = c.run(fused);
      await res[1]!.toArray(); // wait for the device
      if (r >= 0) times[+fused]!.push(performance.now() - t0);
      counts[+fused] = be.stats().dispatches - d0;
      outs[+fused] = res;
    }
    if (r === -1) diff = await maxDiff(outs[1]!, outs[0]!); // first round: check, and warm up
    for (const o of outs) for (const t of o) t.dispose();
  }
  const [t0, t1] = [median(times[0]!), median(times[1]!)];
  console.log(
    `${c.name.padEnd(42)} ${String(counts[0]).padStart(8)} ${String(counts[1]).padStart(11)} ${t0.toFixed(2).padStart(8)} ${t1.toFixed(2).padStart(9)} ${(t0 / t1).toFixed(2).padStart(7)}x  ${diff.toExponential(1)}`,
  );
}
process.exit(0);
