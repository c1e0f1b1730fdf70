// Elementwise WebGPU kernels (unary, binary, where, cast, copy): WGSL generated from the op table in
// ewexpr.ts, specialized on op, dtypes, coalesced rank, which operands are scalars (they live in the
// uniforms) and on the contiguous fast path (flat index, vec4 loads/stores when sizes allow).
import { f16BitsToF32, f32ToF16Bits } from '../../../core/float16.js';
import type { DType } from '../../../core/dtype.js';
import { numel } from '../../../core/shape.js';
import type { BinaryOp, UnaryOp } from '../../../ops/opcodes.js';
import { isScalar, type Operand, type ScalarSpec, type TensorSpec } from '../../backend.js';
import type { BufferBinding, Dispatch, KernelContext, WebGPUKernel } from '../kernel.js';
import { wgslType } from '../kernel.js';
import {
  HELPERS_WGSL, UniformWords, WORKGROUP_SIZE, coalesce, computeType, convert, enables, entry1d, grid, load,
  storageDecl, store, stridedOffsets, uF32, uI32, uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore
import { binaryPlan, castPlan, helperSource, unaryPlan, wherePlan, type EwPlan } from './ewexpr.js';

/** Puts scalar operand `s` into uniform word `slot` as its dtype's compute value (float16 rounded to f16 first). */
export function packScalar(u: UniformWords, slot: number, s: ScalarSpec): void {
  switch (s.dtype) {
    case 'float32':
      u.f32s(slot, s.scalar);
      break;
    case 'float16':
      u.f32s(slot, f16BitsToF32(f32ToF16Bits(s.scalar)));
      break;
    case 'int32':
      u.i32s(slot, s.scalar);
      break;
    case 'uint32':
      u.u32(slot, s.scalar);
      break;
    case 'bool':
      u.u32(slot, s.scalar !== 0 ? 1 : 0);
      break;
  }
}

/** WGSL expression reading uniform word `slot` as the compute type of `d`. */
export function uniformAs(slot: number, d: DType): string {
  const t = computeType(d);
  return t === 'f32' ? uF32(slot) : t === 'i32' ? uI32(slot) : uU32(slot);
}

const LANES = ['x', 'y', 'z', 'w'] as const;

/**
 * Builds the single dispatch of elementwise plan `plan` named `name` over `inputs` into `out` (a possibly
 * strided view; an input may be the very same view of the same buffer, as in-place ops do).
 */
export function elementwiseDispatch(
  name: string,
  plan: EwPlan,
  inputs: readonly Operand[],
  out: TensorSpec,
  ctx: KernelContext,
): Dispatch[] {
  const n = numel(out.shape);
  if (n === 0) return [];
  const tensors: TensorSpec[] = [];
  for (const x of inputs) if (!isScalar(x)) tensors.push(x);
  const lay = coalesce(out.shape, [out.strides, ...tensors.map((t) => t.strides)]);
  const rank = lay.shape.length;
  const flat = rank === 1 && lay.strides[0]![0] === 1 && lay.strides.every((s) => s[0] === 0 || s[0] === 1);

  // bindings: 0 = out; each tensor input reuses out's binding or an earlier input's when it shares the buffer
  const buffers: BufferBinding[] = [{ buffer: out.buffer, readOnly: false }];
  const bindDtypes: DType[] = [out.dtype];
  const tBinding: number[] = tensors.map((t) => {
    let b = buffers.findIndex((x, i) => x.buffer === t.buffer && bindDtypes[i] === t.dtype);
    if (b < 0 && t.buffer === out.buffer)
      throw new Error(
        `webgpu ${name}: an input aliases the output buffer with another dtype (${t.dtype} vs ${out.dtype})`,
      );
    if (b < 0) {
      b = buffers.length;
      buffers.push({ buffer: t.buffer, readOnly: true });
      bindDtypes.push(t.dtype);
    }
    return b;
  });
  const allOffsets = [out.offset, ...tensors.map((t) => t.offset)];
  const vec4 =
    flat &&
    n % 4 === 0 &&
    lay.strides.every((s) => s[0] === 1) &&
    allOffsets.every((o) => o % 4 === 0) &&
    bindDtypes.every((d) => d !== 'float16');

  // uniform slots: n, scalars, offsets (out first), then shape and strides on the strided path
  let slot = 1;
  const scalarSlot: number[] = inputs.map((x) => (isScalar(x) ? slot++ : -1));
  const offSlot = allOffsets.map(() => slot++);
  const shapeSlot = slot;
  if (!flat) slot += rank * (1 + allOffsets.length);
  const u = new UniformWords(slot);
  u.u32(0, n);
  inputs.forEach((x, k) => {
    if (isScalar(x)) packScalar(u, scalarSlot[k]!, x);
  });
  allOffsets.forEach((o, k) => u.u32(offSlot[k]!, o));
  if (!flat) {
    u.u32Array(shapeSlot, lay.shape);
    lay.strides.forEach((s, k) => u.u32Array(shapeSlot + rank * (1 + k), s));
  }

  let tk = 0;
  const desc = inputs.map((x) => {
    if (isScalar(x)) return `s${x.dtype}`;
    const k = tk++;
    return `t${x.dtype}b${tBinding[k]!}${flat ? `z${lay.strides[1 + k]![0]!}` : ''}`;
  });
  const mode = vec4 ? 'v4' : flat ? 'flat' : `r${rank}`;
  const key = `ew.${name}|${out.dtype}|${mode}|${desc.join(',')}|${bindDtypes.join(',')}`;

  const code = (): string => {
    let s = enables(bindDtypes) + HELPERS_WGSL + helperSource(plan.helpers);
    bindDtypes.forEach((d, b) => (s += storageDecl(b, `B${b}`, d, b > 0, vec4)));
    s += uniformDecl(buffers.length, slot);
    let body = `if (gi >= ${vec4 ? `(${uU32(0)} >> 2u)` : uU32(0)}) { return; }\n`;
    const idxName = (k: number): string => `i${k}`; // k = 0 out, 1.. tensors
    if (vec4) {
      for (let k = 0; k < allOffsets.length; k++) body += `let ${idxName(k)} = (${uU32(offSlot[k]!)} >> 2u) + gi;\n`;
    } else if (flat) {
      for (let k = 0; k < allOffsets.length; k++) {
        const z = k === 0 || lay.strides[k]![0] === 1;
        body += `let ${idxName(k)} = ${uU32(offSlot[k]!)}${z ? ' + gi' : ''};\n`;
      }
    } else {
      const ops = allOffsets.map((_, k) => ({
        name: idxName(k),
        stridesSlot: shapeSlot + rank * (1 + k),
        offsetSlot: offSlot[k]!,
      }));
      body += stridedOffsets('gi', rank, shapeSlot, ops);
    }
    const lanes = vec4 ? LANES : [''];
    let ti = 0;
    const tensorOf = inputs.map((x) => (isScalar(x) ? -1 : ti++));
    if (vec4) tensorOf.forEach((t, k) => t >= 0 && (body += `let v${k} = B${tBinding[t]!}[${idxName(t + 1)}];\n`));
    if (vec4) body += `var r: vec4<${wgslType(out.dtype)}>;\n`;
    for (const lane of lanes) {
      const args = inputs.map((x, k) => {
        const want = plan.inputs[k]!;
        if (isScalar(x)) return convert(uniformAs(scalarSlot[k]!, x.dtype), x.dtype, want);
        const t = tensorOf[k]!;
        return vec4 ? convert(`v${k}.${lane}`, x.dtype, want) : load(`B${tBinding[t]!}`, idxName(t + 1), x.dtype, want);
      });
      const sfx = lane === '' ? '' : `_${lane}`;
      args.forEach((a, k) => (body += `let a${k}${sfx} = ${a};\n`));
      const value = convert(plan.expr(args.map((_, k) => `a${k}${sfx}`)), plan.result, out.dtype);
      body += vec4 ? `r.${lane} = ${value};\n` : `${store('B0', 'i0', out.dtype, value)}\n`;
    }
    if (vec4) body += 'B0[i0] = r;\n';
    return s + entry1d(WORKGROUP_SIZE, body);
  };
  const groups = Math.ceil(n / (vec4 ? 4 : 1) / WORKGROUP_SIZE);
  return [
    {
      program: { key, code },
      buffers,
      uniforms: u.words,
      workgroups: grid(groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
}

const operandDType = (x: Operand): DType => x.dtype;

/** The kernel of unary op `op`. */
export function unaryKernel<K extends UnaryOp>(op: K): WebGPUKernel<K> {
  return (inputs, out, _attrs, ctx) =>
    elementwiseDispatch(op, unaryPlan(op, operandDType(inputs[0]!), out.dtype), inputs, out, ctx);
}

/** The kernel of binary op `op` (either operand may be a scalar). */
export function binaryKernel<K extends BinaryOp>(op: K): WebGPUKernel<K> {
  return (inputs, out, _attrs, ctx) =>
    elementwiseDispatch(
      op,
      binaryPlan(op, operandDType(inputs[0]!), operandDType(inputs[1]!), out.dtype),
      inputs,
      out,
      ctx,
    );
}

/** where(cond, a, b). */
export const where: WebGPUKernel<'where'> = (inputs, out, _a, ctx) =>
  elementwiseDispatch('where', wherePlan(out.dtype), inputs, out, ctx);

/** cast: converts to out.dtype with the CPU backend's conversion rules. */
export const cast: WebGPUKernel<'cast'> = (inputs, out, _a, ctx) =>
  elementwiseDispatch('cast', castPlan(out.dtype), inputs, out, ctx);

/** copy: materializes a strided view (or writes into one); bit exact for same dtypes, else a cast. */
export const copy: WebGPUKernel<'copy'> = (inputs, out, _a, ctx) =>
  elementwiseDispatch('cast', castPlan(out.dtype), inputs, out, ctx);
