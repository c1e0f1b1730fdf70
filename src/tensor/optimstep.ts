// The frontend of the fused optimizer kernel: one Adam/AdamW step over flat float32 tensors in place
// (parameter, moments, AMSGrad maximum), one backend dispatch however many parameters the flat holds.
import { OpError } from '../core/errors.js';
import type { AdamWAttrs } from '../ops/opcodes.js';
import { backendOf } from './engine.js';
import { checkInplace } from './elementwise.js';
import type { Tensor } from './tensor.js';

/**
 * One torch.optim.Adam / AdamW step, elementwise, in place, in one kernel (see `AdamWAttrs` and
 * optim/adam.ts for the math): updates `param`, `expAvg`, `expAvgSq` and, with `attrs.amsgrad`,
 * `maxExpAvgSq` from `grad`. All are contiguous float32 tensors of the same size on one device, in
 * distinct storages (the written ones would otherwise alias). Like every in-place op it refuses to
 * run on tensors that require grad while gradients are recorded (call it under noGrad).
 */
export function adamwUpdate_(
  param: Tensor,
  grad: Tensor,
  expAvg: Tensor,
  expAvgSq: Tensor,
  maxExpAvgSq: Tensor | null,
  attrs: AdamWAttrs,
): void {
  const op = 'adamwUpdate_';
  const all = maxExpAvgSq ? [param, grad, expAvg, expAvgSq, maxExpAvgSq] : [param, grad, expAvg, expAvgSq];
  if (attrs.amsgrad !== (maxExpAvgSq !== null))
    throw new OpError(op, 'maxExpAvgSq must be given exactly when amsgrad is set');
  if (!Number.isInteger(attrs.step) || attrs.step < 1)
    throw new OpError(op, `step must be an integer >= 1, got ${attrs.step}`);
  const backend = backendOf(op, all);
  for (const t of all) {
    if (t.dtype !== 'float32') throw new OpError(op, `operands must be float32, got ${t.dtype}`);
    if (!t.isContiguous) throw new OpError(op, 'operands must be contiguous');
    if (t.size !== param.size) throw new OpError(op, `operand sizes differ: ${t.size} vs ${param.size}`);
  }
  if (new Set(all.map((t) => t.storage)).size !== all.length) throw new OpError(op, 'operands must not share storage');
  checkInplace(op, param, [grad]);
  for (const t of all.slice(2)) checkInplace(op, t, []);
  if (param.size === 0) return;
  const flat = (t: Tensor) => ({ ...t.spec(), shape: [t.size], strides: [1] });
  backend.run('adamw', all.slice(1).map(flat), flat(param), attrs);
  for (const t of all) if (t !== grad) t.storage.version++;
}
