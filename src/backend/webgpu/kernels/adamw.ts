// adamw for WebGPU: one dispatch updates a whole flat float32 segment in place (parameter, moments,
// AMSGrad maximum). Every hyperparameter and the bias corrections travel as uniforms, so one pipeline
// per AMSGrad variant serves every step, group and learning-rate schedule.
import { numel } from '../../../core/shape.js';
import type { TensorSpec } from '../../backend.js';
import type { BufferBinding, WebGPUKernel } from '../kernel.js';
import { UniformWords, WORKGROUP_SIZE, entry1d, grid, storageDecl, uF32, uU32, uniformDecl } from './codegen.js';

// uniform slots: n, the five element offsets (p, g, m, v, vmax), then the f32 constants
const N = 0;
const OFF = 1;
const B1 = 6;
const C1 = 7; // 1 - beta1 (from float64 on the host)
const B2 = 8;
const C2 = 9; // 1 - beta2
const EPS = 10;
const DECAY = 11; // 1 - lr·λ for AdamW, 1 for Adam
const L2 = 12; // λ for Adam, 0 for AdamW
const STEP = 13; // lr / (1 - beta1^t); 0 leaves θ at its decayed value
const RBC2 = 14; // 1 / sqrt(1 - beta2^t)
const SIGN = 15; // -1 with maximize
const WORDS = 16;

function source(amsgrad: boolean): string {
  const at = (k: number, name: string): string => `${name}[${uU32(OFF + k)} + gi]`;
  const body = `if (gi >= ${uU32(N)}) { return; }
let th0 = ${at(0, 'P')};
let g = ${uF32(SIGN)} * ${at(1, 'G')} + ${uF32(L2)} * th0;
let m = ${uF32(B1)} * ${at(2, 'M')} + ${uF32(C1)} * g;
let v = ${uF32(B2)} * ${at(3, 'V')} + ${uF32(C2)} * g * g;
${at(2, 'M')} = m;
${at(3, 'V')} = v;
${amsgrad ? `let u = max(${at(4, 'X')}, v);\n${at(4, 'X')} = u;` : 'let u = v;'}
let th = th0 * ${uF32(DECAY)};
let step = ${uF32(STEP)};
${at(0, 'P')} = select(th - step * m / (sqrt(u) * ${uF32(RBC2)} + ${uF32(EPS)}), th, step == 0.0);`;
  return (
    storageDecl(0, 'P', 'float32', false) +
    storageDecl(1, 'G', 'float32', true) +
    storageDecl(2, 'M', 'float32', false) +
    storageDecl(3, 'V', 'float32', false) +
    (amsgrad ? storageDecl(4, 'X', 'float32', false) : '') +
    uniformDecl(amsgrad ? 5 : 4, WORDS) +
    entry1d(WORKGROUP_SIZE, body)
  );
}

/**
 * adamw over inputs (g, m, v[, vmax]) and output p, all contiguous float32 of equal length in distinct
 * buffers (a buffer bound read_write may not be bound twice). The same math as the CPU kernel, in f32.
 */
export const adamw: WebGPUKernel<'adamw'> = (inputs, out, a, ctx) => {
  const n = numel(out.shape);
  if (n === 0) return [];
  const [g, m, v, x] = inputs as readonly TensorSpec[];
  const ops = a.amsgrad ? [out, g!, m!, v!, x!] : [out, g!, m!, v!];
  const u = new UniformWords(WORDS).u32(N, n);
  ops.forEach((t, k) => u.u32(OFF + k, t.offset));
  u.f32s(B1, a.beta1)
    .f32s(C1, 1 - a.beta1)
    .f32s(B2, a.beta2)
    .f32s(C2, 1 - a.beta2)
    .f32s(EPS, a.eps);
  u.f32s(DECAY, a.decoupled ? 1 - a.lr * a.weightDecay : 1).f32s(L2, a.decoupled ? 0 : a.weightDecay);
  u.f32s(STEP, a.lr / (1 - a.beta1 ** a.step)).f32s(RBC2, 1 / Math.sqrt(1 - a.beta2 ** a.step));
  u.f32s(SIGN, a.maximize ? -1 : 1);
  const buffers: BufferBinding[] = ops.map((t, k) => ({ buffer: t.buffer, readOnly: k === 1 }));
  const key = `adamw|${a.amsgrad ? 'ams' : 'plain'}`;
  return [
    {
      program: { key, code: () => source(a.amsgrad) },
      buffers,
      uniforms: u.words,
      workgroups: grid(Math.ceil(n / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

/** The adamw entry of the kernel table. */
export const adamwKernels = { adamw };
