// Host reads and device moves: the only places that wait for a device. Each read is a sync point,
// so the training loop keeps them to at most one per logged step.
import { f16DecodeTable } from '../core/float16.js';
import { OpError } from '../core/errors.js';
import type { TypedArray } from '../core/dtype.js';
import { allocTensor } from './engine.js';
import { getBackend, type DeviceLike } from './device.js';
import { noGrad } from './gradmode.js';
import type { Tensor } from './tensor.js';
import { contiguous } from './views.js';

/** Host copy of a tensor's values: float16 comes back as Float32Array, bool as Uint8Array. */
export type HostArray = Float32Array | Int32Array | Uint32Array | Uint8Array;

/** Reads a tensor's elements in row-major order (waits for pending device work). */
export async function toArray(x: Tensor): Promise<HostArray> {
  x.assertLive('toArray');
  const c = noGrad(() => contiguous(x));
  const pending = c.storage.backend.read(c.storage.buffer, c.dtype, c.offset, c.size);
  if (c !== x) c.dispose(); // the read was enqueued first, so freeing now is safe
  return decode(await pending);
}

function decode(raw: TypedArray): HostArray {
  if (!(raw instanceof Uint16Array)) return raw;
  const table = f16DecodeTable();
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = table[raw[i]!]!;
  return out;
}

/** The value of a one-element tensor. */
export async function item(x: Tensor): Promise<number> {
  if (x.size !== 1) throw new OpError('item', `needs a tensor with one element, got shape [${x.shape.join(', ')}]`);
  const a = await toArray(x);
  return a[0]!;
}

/** Nested JS arrays of the values (numbers; bools as 0/1). */
export async function toNested(x: Tensor): Promise<unknown> {
  const flat = Array.from(await toArray(x));
  const build = (dim: number, at: number): unknown => {
    if (dim === x.ndim) return flat[at];
    const stride = x.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: x.shape[dim]! }, (_, i) => build(dim + 1, at + i * stride));
  };
  return build(0, 0);
}

/** A copy of `x` on another device (the same tensor if it is already there). Not recorded by autograd. */
export async function toDevice(x: Tensor, device: DeviceLike): Promise<Tensor> {
  const target = getBackend(device);
  if (target === x.storage.backend) return x;
  const c = noGrad(() => contiguous(x));
  const raw = await c.storage.backend.read(c.storage.buffer, c.dtype, c.offset, c.size);
  if (c !== x) c.dispose();
  const out = allocTensor(target, x.shape, x.dtype, 'to');
  if (raw.length > 0) target.write(out.storage.buffer, x.dtype, raw, 0);
  return out;
}
