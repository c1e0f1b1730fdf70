// The conv2d benchmark cases of `loom bench conv2d`: the ResNet-50 stem convolution (3x224x224 ->
// 64x112x112, 7x7, stride 2, padding 3, no bias) at batch 1 and 8, forward only and forward + backward
// (input and weight gradients). bench/torch_bench.py runs the same cases with torch.nn.functional.conv2d.
import '../autograd/index.js';
import { conv2d, getBackend, randn, type Conv2dOptions, type DeviceLike, type Tensor } from '../tensor/index.js';

/** One conv2d case: input (N, C, H, W), weight (O, C, KH, KW) and the options. */
export interface ConvCase {
  readonly name: string;
  readonly input: readonly [number, number, number, number];
  readonly weight: readonly [number, number, number, number];
  readonly opts: Conv2dOptions & { stride: [number, number]; padding: [number, number] };
}

const stem = (n: number): ConvCase => ({
  name: `resnet50-stem-b${n}`,
  input: [n, 3, 224, 224],
  weight: [64, 3, 7, 7],
  opts: { stride: [2, 2], padding: [3, 3] },
});

/** The cases, and a small one for --quick (a smoke test of the benchmark itself). */
export function convCases(quick: boolean): ConvCase[] {
  if (quick) return [{ name: 'stem-like-b1-32px', input: [1, 3, 32, 32], weight: [8, 3, 7, 7], opts: stem(1).opts }];
  return [stem(1), stem(8)];
}

/** Output height and width of a case (no dilation). */
export function convOutputSize(c: ConvCase): [number, number] {
  const [, , h, w] = c.input;
  const [, , kh, kw] = c.weight;
  const { stride, padding } = c.opts;
  return [Math.floor((h + 2 * padding[0] - kh) / stride[0]) + 1, Math.floor((w + 2 * padding[1] - kw) / stride[1]) + 1];
}

/** Forward FLOPs, 2*N*Cout*Hout*Wout*Cin*KH*KW (a backward pass for input and weight is twice that). */
export function convFlops(c: ConvCase): number {
  const [n, cin] = c.input;
  const [cout, , kh, kw] = c.weight;
  const [oh, ow] = convOutputSize(c);
  return 2 * n * cout * oh * ow * cin * kh * kw;
}

/** A ready-to-time case: `run` does one forward (+ backward) and waits for the device. */
export interface ConvRunner {
  run(): Promise<void>;
  dispose(): void;
}

/**
 * Builds a runner for `c` on `device`: random input and weight; with `backward`, both require grad
 * and each run back-propagates a fixed random output gradient, freeing the gradients afterwards so
 * that runs do not accumulate.
 */
export function makeConvRunner(c: ConvCase, device: DeviceLike, backward: boolean): ConvRunner {
  const backend = getBackend(device);
  const x = randn([...c.input], { device });
  const w = randn([...c.weight], { device, std: 0.1 });
  const [oh, ow] = convOutputSize(c);
  const gy: Tensor | null = backward ? randn([c.input[0], c.weight[0], oh, ow], { device }) : null;
  if (backward) x.requiresGrad = w.requiresGrad = true;
  return {
    async run() {
      const y = conv2d(x, w, null, c.opts);
      if (gy) y.backward(gy);
      await backend.sync();
      y.dispose();
      for (const t of [x, w]) {
        t.grad?.dispose();
        t.grad = null;
      }
    },
    dispose() {
      for (const t of [x, w, gy]) t?.dispose();
    },
  };
}
