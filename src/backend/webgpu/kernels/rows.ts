// Shared shape of the WebGPU row kernels (cross-entropy, layer norm): a workgroup of WX rows x WY
// threads; the WY threads of a row stride over its elements and combine their partial results by a
// tree in workgroup memory (the pattern of softmax.ts), so one dispatch handles any row length.
import type { KernelContext } from '../kernel.js';

/** Workgroup shape and count for `rows` rows of `n` elements. */
export interface RowGroups {
  /** Rows per workgroup. */
  readonly wx: number;
  /** Threads per row (a power of two). */
  readonly wy: number;
  /** Workgroups. */
  readonly groups: number;
}

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** WY threads per row (each gets ~4+ elements), the rest of a <= 256-thread workgroup takes more rows. */
export function rowGroups(n: number, rows: number, ctx: KernelContext): RowGroups {
  const threads = 2 ** Math.floor(Math.log2(Math.min(256, ctx.limits.maxComputeInvocationsPerWorkgroup)));
  const wy = Math.min(threads, nextPow2(Math.ceil(n / 4)));
  const wx = Math.max(1, Math.min(threads / wy, nextPow2(rows)));
  return { wx, wy, groups: Math.ceil(rows / wx) };
}

/**
 * WGSL statements that combine `arr[lid]` over the WY threads of each row (threads of a row sit WX
 * apart in `lid`) with `comb(a, b)`, or `+` when omitted; afterwards `arr[lid % WX]` holds the row's
 * result. Must run in uniform control flow (every thread of the workgroup reaches it).
 */
export function treeReduce(arr: string, g: RowGroups, comb?: string): string {
  const steps = [`workgroupBarrier();`];
  for (let h = g.wy / 2; h >= 1; h /= 2) {
    const other = `${arr}[lid + ${h * g.wx}u]`;
    const v = comb ? `${comb}(${arr}[lid], ${other})` : `${arr}[lid] + ${other}`;
    steps.push(`if (ly < ${h}u) { ${arr}[lid] = ${v}; }`, `workgroupBarrier();`);
  }
  return steps.join('\n  ');
}

/**
 * The entry point of a row kernel: defines `lid`, `row` (this thread's row), `ly` (its lane in the
 * row), `live` (row < rows); `groups` and `rows` are WGSL expressions of the uniform group and
 * row counts. `body` must keep barriers in uniform control flow (return only after the last one).
 */
export function rowEntry(g: RowGroups, groups: string, rows: string, body: string): string {
  return `@compute @workgroup_size(${g.wx * g.wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let grp = wid.x + wid.y * nwg.x;
  if (grp >= ${groups}) { return; }
  let row = grp * ${g.wx}u + lid % ${g.wx}u;
  let ly = lid / ${g.wx}u;
  let live = row < ${rows};
  ${body}
}
`;
}
