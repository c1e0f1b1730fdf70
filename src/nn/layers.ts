// The basic layers: Linear, Embedding, LayerNorm, Dropout, activations, and the Sequential / ModuleList
// containers. Parameters are initialized as PyTorch initializes them.
import type { DType } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import {
  embedding,
  ones,
  rand,
  randn,
  tidy,
  zeros,
  type DeviceLike,
  type Generator,
  type Tensor,
} from '../tensor/index.js';
import * as F from './functional.js';
import { Module, type Parameter } from './module.js';

/** Where and how a layer creates its parameters. */
export interface FactoryOptions {
  device?: DeviceLike;
  dtype?: DType;
  /** Generator for the random initialization (default: the global one). */
  generator?: Generator;
}

/** A module with a one-tensor forward, as Sequential chains them. */
export interface UnaryModule extends Module {
  forward(x: Tensor): Tensor;
}

/**
 * y = x W^T + b, weight (outFeatures, inFeatures) and bias (outFeatures) as PyTorch; both initialized
 * U(-1/sqrt(in), 1/sqrt(in)) (torch's kaiming_uniform(a=sqrt(5)) works out to that bound).
 */
export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: FactoryOptions & { bias?: boolean } = {},
  ) {
    super();
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    const init = { low: -bound, high: bound, device: opts.device, dtype: opts.dtype, generator: opts.generator };
    this.weight = this.param(rand([outFeatures, inFeatures], init));
    this.bias = (opts.bias ?? true) ? this.param(rand([outFeatures], init)) : null;
  }

  /** (..., inFeatures) -> (..., outFeatures). */
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

/** A lookup table of `numEmbeddings` vectors of size `embeddingDim`, initialized N(0, 1) as PyTorch. */
export class Embedding extends Module {
  weight: Parameter;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: FactoryOptions = {},
  ) {
    super();
    this.weight = this.param(
      randn([numEmbeddings, embeddingDim], { device: opts.device, dtype: opts.dtype, generator: opts.generator }),
    );
  }

  /** Integer ids of any shape -> (...ids.shape, embeddingDim). Ids outside [0, numEmbeddings) make the kernel throw. */
  forward(ids: Tensor): Tensor {
    if (ids.dtype !== 'int32' && ids.dtype !== 'uint32')
      throw new OpError('Embedding', `ids must be int32 or uint32, got ${ids.dtype}`);
    return embedding(ids, this.weight);
  }
}

/** Layer normalization over the trailing `normalizedShape` dims, with a learned scale (ones) and shift (zeros). */
export class LayerNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalizedShape: readonly number[];

  constructor(
    normalizedShape: number | readonly number[],
    readonly opts: {
      eps?: number;
      elementwiseAffine?: boolean;
      bias?: boolean;
      device?: DeviceLike;
      dtype?: DType;
    } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const affine = opts.elementwiseAffine ?? true;
    const where = { device: opts.device, dtype: opts.dtype };
    this.weight = affine ? this.param(ones(this.normalizedShape, where)) : null;
    this.bias = affine && (opts.bias ?? true) ? this.param(zeros(this.normalizedShape, where)) : null;
  }

  /** Normalizes x (..., *normalizedShape); same shape out. */
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}

/** Inverted dropout with probability `p` in training mode; identity in eval mode. */
export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly generator?: Generator,
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new OpError('Dropout', `p must be in [0, 1], got ${p}`);
  }

  /** Same shape out. */
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training, this.generator);
  }
}

/** GELU activation, tanh approximation (GPT-2's). */
export class GELU extends Module {
  /** Same shape out. */
  forward(x: Tensor): Tensor {
    return x.gelu();
  }
}

/** ReLU activation. */
export class ReLU extends Module {
  /** Same shape out. */
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

/** A list of modules whose children are named by position (`0`, `1`, ...), like torch.nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module {
  /** The modules, in order. */
  readonly items: M[];

  constructor(modules: Iterable<M> = []) {
    super();
    this.items = [...modules];
  }

  protected override ownEntries(): [string, unknown][] {
    const fields = super.ownEntries().filter(([k]) => k !== 'items'); // fields a subclass adds
    return [...this.items.map((m, i): [string, unknown] => [String(i), m]), ...fields];
  }

  /** Number of modules. */
  get length(): number {
    return this.items.length;
  }

  /** The module at `i` (negative counts from the end). */
  at(i: number): M {
    const m = this.items.at(i);
    if (!m) throw new OpError('ModuleList', `index ${i} is out of range for ${this.items.length} modules`);
    return m;
  }

  /** Appends a module. Returns this. */
  push(m: M): this {
    this.items.push(m);
    return this;
  }

  /** Iterates the modules in order. */
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Modules applied in order, each to the previous one's output; children are named `0`, `1`, ... */
export class Sequential extends ModuleList<UnaryModule> {
  constructor(...modules: UnaryModule[]) {
    super(modules);
  }

  /** x through every module in turn. */
  forward(x: Tensor): Tensor {
    return tidy(() => this.items.reduce((y, m) => m.forward(y), x));
  }
}

/** Checks that `x` ends in `dim` features; used by layers that want a clear error before the kernels. */
export function checkLastDim(op: string, x: Tensor, dim: number): void {
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== dim)
    throw new OpError(op, `input ${fmtShape(x.shape)} must end in ${dim} features`);
}
