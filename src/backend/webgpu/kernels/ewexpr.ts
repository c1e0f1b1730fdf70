// The elementwise op table for WebGPU: per op, the dtype its operands are computed in, the dtype of its
// result, and the WGSL expression (same semantics as the CPU backend's row loops), plus the helper
// functions those expressions call. elementwise.ts turns an entry into a kernel.
import type { DType } from '../../../core/dtype.js';
import type { BinaryOp, UnaryOp } from '../../../ops/opcodes.js';
import { computeType } from './codegen.js';

/** The WGSL compute type of an expression. */
export type WType = 'f32' | 'i32' | 'u32';

/** How an elementwise op computes: operands are converted to `inputs[k]`, the expression yields `result`. */
export interface EwPlan {
  readonly inputs: readonly DType[];
  readonly result: DType;
  /** WGSL expression over operand identifiers (each already of its input's compute type). */
  readonly expr: (args: readonly string[]) => string;
  /** Names of HELPER_FNS the expression calls. */
  readonly helpers: readonly string[];
}

const RANK: Readonly<Record<DType, number>> = { bool: 0, uint32: 1, int32: 1, float16: 2, float32: 3 };

/** Common dtype of comparison operands (bool < integers < float16 < float32; int32 wins a tie). */
function promote(ds: readonly DType[]): DType {
  let best: DType = ds[0]!;
  for (const d of ds) if (RANK[d] > RANK[best] || (RANK[d] === RANK[best] && d === 'int32')) best = d;
  return best;
}

const lit = (t: WType, v: number): string => (t === 'f32' ? `${v}.0` : t === 'i32' ? `${v}i` : `${v}u`);

/**
 * Some drivers (GL-ES on llvmpipe among them) compile float comparisons without NaN semantics, so an
 * f32 expression whose comparisons must see NaN yields `nanValue` when `a` is NaN (tl_isnan is a bit test).
 */
function nanSafe(t: WType, a: string, e: string, nanValue: string): string {
  return t === 'f32' ? `select(${e}, ${nanValue}, tl_isnan(${a}))` : e;
}

function unaryExpr(op: UnaryOp, t: WType, a: string): { e: string; h?: string } {
  switch (op) {
    case 'neg':
      return { e: t === 'u32' ? `0u - ${a}` : `-${a}` };
    case 'abs':
      return { e: t === 'u32' ? a : `abs(${a})` };
    case 'sign': // NaN and -0 give 0, as on the CPU
      if (t === 'u32') return { e: `select(0u, 1u, ${a} > 0u)` };
      return {
        e: nanSafe(
          t,
          a,
          `select(select(${lit(t, 0)}, ${lit(t, -1)}, ${a} < ${lit(t, 0)}), ${lit(t, 1)}, ${a} > ${lit(t, 0)})`,
          '0.0',
        ),
      };
    case 'relu': // NaN stays NaN
      if (t === 'f32') return { e: `select(${a}, 0.0, ${a} <= 0.0 && !tl_isnan(${a}))` };
      return { e: `select(${a}, ${lit(t, 0)}, ${a} <= ${lit(t, 0)})` };
    case 'floor':
    case 'ceil':
    case 'round': // WGSL round() is round-half-to-even, like torch.round
      return { e: t === 'f32' ? `${op}(${a})` : a };
    case 'exp':
    case 'log':
    case 'sqrt':
    case 'sin':
    case 'cos':
      return { e: `${op}(${a})` };
    case 'rsqrt':
      return { e: `1.0 / sqrt(${a})` };
    case 'reciprocal':
      return { e: `1.0 / ${a}` };
    case 'tanh':
      return { e: `tl_tanh(${a})`, h: 'tl_tanh' };
    case 'sigmoid':
      return { e: `tl_sigmoid(${a})`, h: 'tl_sigmoid' };
    case 'gelu':
      return { e: `tl_gelu(${a})`, h: 'tl_gelu' };
    case 'logicalNot':
      return {
        e:
          t === 'f32'
            ? `select(1u, 0u, (bitcast<u32>(${a}) & 0x7fffffffu) != 0u)`
            : `select(0u, 1u, ${a} == ${lit(t, 0)})`,
      };
  }
}

/** The plan of unary op `op` on an operand of dtype `x` with output dtype `out`. */
export function unaryPlan(op: UnaryOp, x: DType, out: DType): EwPlan {
  const cd = op === 'logicalNot' ? x : out;
  const r = unaryExpr(op, computeType(cd), 'a0');
  return {
    inputs: [cd],
    result: op === 'logicalNot' ? 'bool' : out,
    expr: (a) => unaryExpr(op, computeType(cd), a[0]!).e,
    helpers: r.h ? [r.h] : [],
  };
}

const CMP: Partial<Record<BinaryOp, string>> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' };

/** The plan of binary op `op` on operands of dtypes `a`, `b` with output dtype `out`. */
export function binaryPlan(op: BinaryOp, a: DType, b: DType, out: DType): EwPlan {
  const cmp = CMP[op];
  if (cmp) {
    const cd = promote([a, b]);
    if (computeType(cd) !== 'f32')
      return { inputs: [cd, cd], result: 'bool', expr: (x) => `select(0u, 1u, ${x[0]!} ${cmp} ${x[1]!})`, helpers: [] };
    // with a NaN operand every comparison is false except ne (guarded: see nanSafe)
    const nan = (x: readonly string[]): string => `tl_isnan(${x[0]!}) || tl_isnan(${x[1]!})`;
    const expr = (x: readonly string[]): string =>
      op === 'ne'
        ? `select(0u, 1u, ${x[0]!} != ${x[1]!} || ${nan(x)})`
        : `select(0u, 1u, ${x[0]!} ${cmp} ${x[1]!} && !(${nan(x)}))`;
    return { inputs: [cd, cd], result: 'bool', expr, helpers: [] };
  }
  if (op === 'logicalAnd' || op === 'logicalOr') {
    const o = op === 'logicalAnd' ? '&' : '|';
    return { inputs: ['bool', 'bool'], result: 'bool', expr: (x) => `(${x[0]!} ${o} ${x[1]!})`, helpers: [] };
  }
  const t = computeType(out);
  const plan = (expr: (x: readonly string[]) => string, helpers: string[] = []): EwPlan => ({
    inputs: [out, out],
    result: out,
    expr,
    helpers,
  });
  switch (op) {
    case 'add':
      return plan((x) => `${x[0]!} + ${x[1]!}`);
    case 'sub':
      return plan((x) => `${x[0]!} - ${x[1]!}`);
    case 'mul': // i32/u32 multiplication wraps, like Math.imul
      return plan((x) => `${x[0]!} * ${x[1]!}`);
    case 'div':
      return plan((x) => `${x[0]!} / ${x[1]!}`);
    case 'pow':
      return plan((x) => `tl_pow_${t}(${x[0]!}, ${x[1]!})`, [`tl_pow_${t}`]);
    case 'maximum':
      if (t !== 'f32') return plan((x) => `max(${x[0]!}, ${x[1]!})`);
      return plan(
        (x) => `select(${x[1]!}, ${x[0]!}, tl_isnan(${x[0]!}) || (!tl_isnan(${x[1]!}) && ${x[0]!} > ${x[1]!}))`,
      );
    case 'minimum':
      if (t !== 'f32') return plan((x) => `min(${x[0]!}, ${x[1]!})`);
      return plan(
        (x) => `select(${x[1]!}, ${x[0]!}, tl_isnan(${x[0]!}) || (!tl_isnan(${x[1]!}) && ${x[0]!} < ${x[1]!}))`,
      );
    case 'geluGrad':
      return plan((x) => `tl_gelu_grad(${x[0]!}, ${x[1]!})`, ['tl_gelu_grad']);
    default:
      throw new Error(`webgpu: no elementwise plan for ${op}`);
  }
}

/** where(cond, a, b): cond is truthy when nonzero; a and b computed in the output dtype. */
export function wherePlan(out: DType): EwPlan {
  return {
    inputs: ['bool', out, out],
    result: out,
    expr: (x) => `select(${x[2]!}, ${x[1]!}, ${x[0]!} != 0u)`,
    helpers: [],
  };
}

/** cast/copy: the operand converted to the output dtype (`codegen.convert` rules). */
export function castPlan(out: DType): EwPlan {
  return { inputs: [out], result: out, expr: (x) => x[0]!, helpers: [] };
}

const GELU = 'const TL_GELU_C: f32 = 0.7978845608028654;\nconst TL_GELU_A: f32 = 0.044715;\n';

/**
 * WGSL helper functions by name; `tl_tanh` is accurate near 0 (Taylor series below 0.125, where the
 * exp form loses digits) and saturates exactly to +-1 for large inputs.
 */
export const HELPER_FNS: Readonly<Record<string, string>> = {
  tl_tanh: `fn tl_tanh(x: f32) -> f32 {
  if (tl_isnan(x)) { return x; }
  let ax = abs(x);
  if (ax < 0.125) { let x2 = x * x; return x * (1.0 + x2 * (-0.3333333333 + x2 * (0.1333333333 + x2 * (-0.0539682540 + x2 * 0.0218694885)))); }
  if (ax >= 10.0) { return select(-1.0, 1.0, x > 0.0); }
  let e = exp(-2.0 * ax);
  let t = (1.0 - e) / (1.0 + e);
  return select(-t, t, x >= 0.0);
}\n`,
  tl_sigmoid: `fn tl_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}\n`,
  // 0.5 (1 + tanh u) = sigmoid(2u) and 1 - tanh^2 u = 4 s (1 - s): the same function as the CPU's tanh
  // form, written without the cancellation of 1 + tanh(u) for negative x (f32 would lose digits there)
  tl_gelu: `${GELU}fn tl_gelu(x: f32) -> f32 { return x * tl_sigmoid(2.0 * TL_GELU_C * (x + TL_GELU_A * x * x * x)); }\n`,
  tl_gelu_grad: `fn tl_gelu_grad(x: f32, g: f32) -> f32 {
  let x2 = x * x;
  let u2 = 2.0 * TL_GELU_C * (x + TL_GELU_A * x * x2);
  let s = tl_sigmoid(u2);
  let sm = tl_sigmoid(-u2);
  return g * (s + 2.0 * x * s * sm * TL_GELU_C * (1.0 + 3.0 * TL_GELU_A * x2));
}\n`,
  // C's pow (as torch and the CPU backend): pow(1, y) = 1 and pow(-1, +-Inf) = 1, else Math.pow's special
  // cases; integer exponents up to 64 by repeated squaring (exact for squares, like the CPU)
  tl_pow_f32: `var<private> tl_inf_bits: u32 = 0x7f800000u;
var<private> tl_nan_bits: u32 = 0x7fc00000u;
fn tl_pow_f32(a: f32, b: f32) -> f32 {
  let inf = bitcast<f32>(tl_inf_bits);
  if (a == 1.0 && !tl_isnan(a)) { return 1.0; }
  if (tl_isnan(b)) { return b; }
  if (b == 0.0) { return 1.0; }
  if (tl_isnan(a)) { return a; }
  let aa = abs(a);
  let ab = abs(b);
  let aneg = (bitcast<u32>(a) >> 31u) == 1u;
  if (ab == inf) {
    if (aa == 1.0) { return 1.0; }
    return select(0.0, inf, (aa > 1.0) == (b > 0.0));
  }
  let fb = floor(b);
  let isint = fb == b;
  let odd = isint && floor(b * 0.5) * 2.0 != b;
  if (aa == inf || a == 0.0) {
    let r = select(0.0, inf, (aa == inf) == (b > 0.0));
    return select(r, -r, aneg && odd);
  }
  if (isint && ab <= 64.0) {
    var e = u32(ab); var base = a; var r = 1.0;
    loop { if ((e & 1u) != 0u) { r = r * base; } e = e >> 1u; if (e == 0u) { break; } base = base * base; }
    return select(r, 1.0 / r, b < 0.0);
  }
  if (aneg) {
    if (!isint) { return bitcast<f32>(tl_nan_bits); }
    let r = exp2(b * log2(aa));
    return select(r, -r, odd);
  }
  return exp2(b * log2(a));
}\n`,
  tl_pow_i32: `fn tl_pow_i32(a: i32, b: i32) -> i32 {
  if (b < 0) { if (a == 1) { return 1; } if (a == -1) { return select(1, -1, (b & 1) != 0); } return 0; }
  var e = u32(b); var base = a; var r = 1i;
  loop { if (e == 0u) { break; } if ((e & 1u) != 0u) { r = r * base; } e = e >> 1u; base = base * base; }
  return r;
}\n`,
  tl_pow_u32: `fn tl_pow_u32(a: u32, b: u32) -> u32 {
  var e = b; var base = a; var r = 1u;
  loop { if (e == 0u) { break; } if ((e & 1u) != 0u) { r = r * base; } e = e >> 1u; base = base * base; }
  return r;
}\n`,
};

/** The helper source for a set of helper names (dependencies first, each once). */
export function helperSource(names: readonly string[]): string {
  const order = ['tl_tanh', 'tl_sigmoid', 'tl_gelu', 'tl_gelu_grad', 'tl_pow_f32', 'tl_pow_i32', 'tl_pow_u32'];
  const want = new Set(names);
  if (want.has('tl_gelu_grad')) want.add('tl_gelu'); // the constants
  if (want.has('tl_gelu')) want.add('tl_sigmoid');
  return order
    .filter((n) => want.has(n))
    .map((n) => HELPER_FNS[n]!)
    .join('');
}
