// Multi-head causal self-attention as in nanoGPT / GPT-2: one projection to q, k, v, causal softmax
// attention per head, an output projection and residual dropout. Field names follow HF GPT-2.
import { OpError } from '../core/errors.js';
import { tidy, type Tensor } from '../tensor/index.js';
import * as F from './functional.js';
import { Dropout, Linear, checkLastDim, type FactoryOptions } from './layers.js';
import { Module } from './module.js';

/** Options of `CausalSelfAttention`. */
export interface CausalSelfAttentionOptions extends FactoryOptions {
  /** Dropout on the attention weights and on the output (default 0). */
  dropout?: number;
  /** Biases in the two projections (default true). */
  bias?: boolean;
}

/** Causal multi-head self-attention over (B, T, C) with C = nEmbd split into nHead heads. */
export class CausalSelfAttention extends Module {
  /** q, k, v projections for all heads, in one matmul: C -> 3C. */
  c_attn: Linear;
  /** Output projection: C -> C. */
  c_proj: Linear;
  /** Dropout on the attention weights. */
  attn_dropout: Dropout;
  /** Dropout on the output. */
  resid_dropout: Dropout;

  constructor(
    readonly nEmbd: number,
    readonly nHead: number,
    opts: CausalSelfAttentionOptions = {},
  ) {
    super();
    if (!Number.isInteger(nHead) || nHead <= 0 || nEmbd % nHead !== 0) {
      throw new OpError('CausalSelfAttention', `nEmbd ${nEmbd} must be a multiple of nHead ${nHead}`);
    }
    const lin = { bias: opts.bias ?? true, device: opts.device, dtype: opts.dtype, generator: opts.generator };
    this.c_attn = new Linear(nEmbd, 3 * nEmbd, lin);
    this.c_proj = new Linear(nEmbd, nEmbd, lin);
    this.attn_dropout = new Dropout(opts.dropout ?? 0, opts.generator);
    this.resid_dropout = new Dropout(opts.dropout ?? 0, opts.generator);
  }

  /** (B, T, C) -> (B, T, C); position t only sees positions <= t. */
  forward(x: Tensor): Tensor {
    if (x.ndim !== 3) throw new OpError('CausalSelfAttention', `input must be (B, T, C), got [${x.shape.join(', ')}]`);
    checkLastDim('CausalSelfAttention', x, this.nEmbd);
    const [B, T, C] = x.shape as [number, number, number];
    const nh = this.nHead;
    const hs = C / nh;
    return tidy(() => {
      const qkv = this.c_attn.forward(x); // (B, T, 3C)
      const [q, k, v] = qkv.split(C, 2).map((t) => t.view([B, T, nh, hs]).transpose(1, 2)) as [Tensor, Tensor, Tensor]; // (B, nh, T, hs)
      const y = F.scaledDotProductAttention(q, k, v, {
        causal: true,
        dropoutP: this.attn_dropout.p,
        training: this.training,
        ...(this.attn_dropout.generator ? { generator: this.attn_dropout.generator } : {}),
      }); // (B, nh, T, hs)
      const merged = y.transpose(1, 2).reshape([B, T, C]); // (B, T, nh, hs) -> (B, T, C), a copy
      return this.resid_dropout.forward(this.c_proj.forward(merged)); // (B, T, C)
    });
  }
}
