// Error types and message helpers. Every user-facing failure names the op, the shapes/dtypes involved
// and what would have been valid, so that a bad call is fixed from the message alone.

/** Base class of every error thrown by tensorloom. */
export class TensorloomError extends Error {
  override name = 'TensorloomError';
}

/** Thrown when an op gets inputs of incompatible shapes, dtypes or devices. */
export class OpError extends TensorloomError {
  override name = 'OpError';
  /** The op that refused its inputs. */
  readonly op: string;
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.op = op;
  }
}

/** Thrown when autograd cannot compute a gradient (stale saved tensor, graph freed, ...). */
export class AutogradError extends TensorloomError {
  override name = 'AutogradError';
}

/** Formats a shape the way error messages show it: `[2, 3, 4]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws an OpError unless `cond` holds; `msg` is built lazily so hot paths pay nothing. */
export function check(cond: boolean, op: string, msg: () => string): asserts cond {
  if (!cond) throw new OpError(op, msg());
}
