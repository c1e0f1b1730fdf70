// Binary elementwise kernels of the CPU backend (add, sub, mul over dense float32 operands staged
// contiguously by src/backend/cpu/wasmelementwise.ts), re-exported from wasm/gemm.ts. f32x4 lanes give
// the same float32 results as the JS loops (one correctly rounded operation per element).

/**
 * o[i] = a[i] op b[i] for n4 (a multiple of 4) floats at byte addresses a, b and o (o may equal a or b);
 * op 0 is add, 1 sub, 2 mul.
 */
export function binaryF32(a: usize, b: usize, o: usize, n4: i32, op: i32): void {
  const end = (<usize>n4) << 2;
  if (op == 0) {
    for (let i: usize = 0; i < end; i += 16) v128.store(o + i, f32x4.add(v128.load(a + i), v128.load(b + i)));
  } else if (op == 1) {
    for (let i: usize = 0; i < end; i += 16) v128.store(o + i, f32x4.sub(v128.load(a + i), v128.load(b + i)));
  } else {
    for (let i: usize = 0; i < end; i += 16) v128.store(o + i, f32x4.mul(v128.load(a + i), v128.load(b + i)));
  }
}
