// Multi-head causal self-attention as in nanoGPT / GPT-2: one projection to q, k, v, causal softmax
// attention per head, an output projection and residual dropout. Field names follow HF GPT-2. For
// generation, `forwardCached` attends new positions over a preallocated key/value cache (KVCache).
import { OpError } from '../core/errors.js';
import type { DType } from '../core/dtype.js';
import { keep, noGrad, tidy, zeros, type DeviceLike, type Tensor } from '../tensor/index.js';
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

/**
 * The keys and values of one attention layer for positions [0, maxLen), preallocated once so that decoding
 * writes each new position in place and allocates nothing that grows with the sequence.
 */
export class KVCache {
  /** Keys, (B, nh, maxLen, hs); only positions below the caller's length are meaningful. */
  readonly k: Tensor;
  /** Values, (B, nh, maxLen, hs). */
  readonly v: Tensor;

  constructor(
    readonly batch: number,
    readonly nHead: number,
    readonly maxLen: number,
    readonly headSize: number,
    opts: { device?: DeviceLike; dtype?: DType } = {},
  ) {
    const shape = [batch, nHead, maxLen, headSize];
    this.k = keep(zeros(shape, opts)); // (B, nh, maxLen, hs)
    this.v = keep(zeros(shape, opts)); // (B, nh, maxLen, hs)
  }

  /** Frees both buffers. */
  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }
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

  /**
   * (B, T, C) -> (B, T, C); position t only sees positions <= t. With `residual` (B, T, C) the result is
   * residual + attention (a block's skip connection), added in the output projection's matmul epilogue
   * while the residual dropout is inactive.
   */
  forward(x: Tensor, residual: Tensor | null = null): Tensor {
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
      return this.project(merged, residual); // (B, T, C)
    });
  }

  /**
   * The output projection and residual dropout, plus `residual` when given: one matmul (its epilogue adds
   * the residual) when the dropout is inactive (p = 0 or eval), else the unfused dropout and add.
   */
  private project(merged: Tensor, residual: Tensor | null): Tensor {
    const drop = this.resid_dropout;
    if (!residual) return drop.forward(this.c_proj.forward(merged));
    if (drop.p === 0 || !drop.training) return F.linear(merged, this.c_proj.weight, this.c_proj.bias, { residual });
    return residual.add(drop.forward(this.c_proj.forward(merged)));
  }

  /**
   * Attention of T new positions `start`..`start+T-1` of x (B, T, C) over the cached prefix plus
   * themselves: their keys and values are written into `cache` in place, and position start+i sees
   * cached positions <= start+i. Inference only (runs under noGrad); equals `forward` on the whole
   * sequence at those positions. `residual` as in `forward`.
   */
  forwardCached(x: Tensor, cache: KVCache, start: number, residual: Tensor | null = null): Tensor {
    if (x.ndim !== 3) throw new OpError('CausalSelfAttention', `input must be (B, T, C), got [${x.shape.join(', ')}]`);
    checkLastDim('CausalSelfAttention', x, this.nEmbd);
    const [B, T, C] = x.shape as [number, number, number];
    const nh = this.nHead;
    const hs = C / nh;
    if (cache.batch !== B || cache.nHead !== nh || cache.headSize !== hs)
      throw new OpError(
        'CausalSelfAttention',
        `the cache holds (B, nh, hs) = (${cache.batch}, ${cache.nHead}, ${cache.headSize}), the input needs (${B}, ${nh}, ${hs})`,
      );
    if (!Number.isInteger(start) || start < 0 || start + T > cache.maxLen)
      throw new OpError(
        'CausalSelfAttention',
        `positions [${start}, ${start + T}) do not fit in a cache of ${cache.maxLen} positions`,
      );
    const L = start + T;
    return noGrad(() =>
      tidy(() => {
        const qkv = this.c_attn.forward(x); // (B, T, 3C)
        const [q, k, v] = qkv.split(C, 2).map((t) => t.view([B, T, nh, hs]).transpose(1, 2)) as [
          Tensor,
          Tensor,
          Tensor,
        ]; // (B, nh, T, hs)
        cache.k.narrow(2, start, T).copy_(k); // into (B, nh, [start, L), hs)
        cache.v.narrow(2, start, T).copy_(v);
        const keys = cache.k.narrow(2, 0, L); // (B, nh, L, hs)
        const values = cache.v.narrow(2, 0, L); // (B, nh, L, hs)
        // new position start + i sees keys j <= start + i: the fused causal softmax with offset start
        const y = F.scaledDotProductAttention(q, keys, values, {
          causal: true,
          causalOffset: start,
          dropoutP: this.attn_dropout.p,
          training: this.training,
          ...(this.attn_dropout.generator ? { generator: this.attn_dropout.generator } : {}),
        }); // (B, nh, T, hs)
        const merged = y.transpose(1, 2).reshape([B, T, C]); // (B, T, nh, hs) -> (B, T, C)
        return this.project(merged, residual); // (B, T, C)
      }),
    );
  }
}
