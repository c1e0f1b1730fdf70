// concat for WebGPU: one strided copy dispatch per input into its slab of the contiguous output, so a
// dispatch binds two storage buffers however many inputs there are (storage-binding limits stay far off).
import { contiguousStrides, numel } from '../../../core/shape.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, WebGPUKernel } from '../kernel.js';
import { copy } from './elementwise.js';

/** concat(...inputs) along attrs.axis into the contiguous `out` (the frontend casts inputs to out's dtype first). */
export const concat: WebGPUKernel<'concat'> = (inputs, out, attrs, ctx) => {
  const axis = attrs.axis;
  const os = contiguousStrides(out.shape);
  const dispatches: Dispatch[] = [];
  let at = 0;
  for (const x of inputs) {
    const t = x as TensorSpec;
    if (numel(t.shape) > 0)
      dispatches.push(
        ...copy([t], { ...out, shape: t.shape, strides: os, offset: out.offset + at * os[axis]! }, {}, ctx),
      );
    at += t.shape[axis]!;
  }
  return dispatches;
};

/** The concat entry of the kernel table. */
export const concatKernels = { concat };
