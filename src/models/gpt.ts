// A GPT language model as nanoGPT and GPT-2 define it: token + learned position embeddings,
// pre-LayerNorm blocks of causal self-attention and a tanh-GELU MLP, a final LayerNorm, and an
// output head tied to the token embedding. Module order: MLP, Block, GPT. Generation uses a KV cache
// (forwardCached) and the host-side sampler of sampling.ts. Under nn's autocast the linear layers,
// attention matmuls and head compute in float16 over the float32 parameters (mixed precision).
import { OpError } from '../core/errors.js';
import {
  autocastOperand,
  CausalSelfAttention,
  Dropout,
  Embedding,
  F,
  KVCache,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  init,
} from '../nn/index.js';
import {
  arange,
  keep,
  matmul,
  noGrad,
  tensor,
  tidy,
  type DeviceLike,
  type Generator,
  type Tensor,
} from '../tensor/index.js';
import { Sampler, type SamplingOptions } from './sampling.js';

/** Architecture of a GPT. */
export interface GPTConfig {
  vocabSize: number;
  /** Context length (number of learned positions). */
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
  /** Biases in Linear and LayerNorm layers (GPT-2 has them). */
  bias: boolean;
}

interface Factory {
  device?: DeviceLike;
  generator?: Generator;
}

/** The position-wise feed-forward network: C -> 4C -> GELU -> C. */
class MLP extends Module {
  c_fc: Linear;
  c_proj: Linear;
  dropout: Dropout;
  constructor(c: GPTConfig, f: Factory) {
    super();
    this.c_fc = new Linear(c.nEmbd, 4 * c.nEmbd, { bias: c.bias, ...f });
    this.c_proj = new Linear(4 * c.nEmbd, c.nEmbd, { bias: c.bias, ...f });
    this.dropout = new Dropout(c.dropout, f.generator);
  }
  /**
   * (B, T, C) -> (B, T, C), plus `residual` (B, T, C) when given. c_fc and its GELU are one matmul (the
   * activation in its epilogue); so is c_proj and the residual add while the dropout is inactive.
   */
  forward(x: Tensor, residual: Tensor | null = null): Tensor {
    return tidy(() => {
      const h = F.linear(x, this.c_fc.weight, this.c_fc.bias, { activation: 'gelu' }); // (B, T, 4C)
      const drop = this.dropout;
      if (residual && (drop.p === 0 || !drop.training))
        return F.linear(h, this.c_proj.weight, this.c_proj.bias, { residual }); // (B, T, C)
      const y = drop.forward(this.c_proj.forward(h)); // (B, T, C)
      return residual ? residual.add(y) : y;
    });
  }
}

/** A transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)). */
class Block extends Module {
  ln_1: LayerNorm;
  attn: CausalSelfAttention;
  ln_2: LayerNorm;
  mlp: MLP;
  constructor(c: GPTConfig, f: Factory) {
    super();
    this.ln_1 = new LayerNorm(c.nEmbd, { bias: c.bias, device: f.device });
    this.attn = new CausalSelfAttention(c.nEmbd, c.nHead, { dropout: c.dropout, bias: c.bias, ...f });
    this.ln_2 = new LayerNorm(c.nEmbd, { bias: c.bias, device: f.device });
    this.mlp = new MLP(c, f);
  }
  forward(x: Tensor): Tensor {
    // the skip connections are added in the projections' matmul epilogues (see MLP.forward)
    return tidy(() => {
      const h = this.attn.forward(this.ln_1.forward(x), x); // x + attn(ln_1(x)), (B, T, C)
      return this.mlp.forward(this.ln_2.forward(h), h); // h + mlp(ln_2(h)), (B, T, C)
    });
  }
  /** `forward` for new positions from `start` on, attending over `cache` (see CausalSelfAttention). */
  forwardCached(x: Tensor, cache: KVCache, start: number): Tensor {
    return tidy(() => {
      const h = this.attn.forwardCached(this.ln_1.forward(x), cache, start, x); // (B, T, C)
      return this.mlp.forward(this.ln_2.forward(h), h); // (B, T, C)
    });
  }
}

/**
 * The per-layer key/value caches of one generation with a GPT, and how many positions they hold.
 * Made by `GPT.createCache`; `dispose()` frees the device buffers.
 */
export class GPTCache {
  /** Positions written so far (the next token goes at this position). */
  length = 0;
  constructor(readonly layers: readonly KVCache[]) {}
  /** Number of positions the cache can hold (the model's blockSize). */
  get maxLen(): number {
    return this.layers[0]?.maxLen ?? 0;
  }
  /** Frees the cache buffers. */
  dispose(): void {
    for (const l of this.layers) l.dispose();
  }
}

/** Options of `GPT.generate`: sampling (temperature 0 or `greedy` is argmax) plus stopping and streaming. */
export interface GenerateOptions extends SamplingOptions {
  /** Stop after producing this id (it is included in the output). */
  eosId?: number;
  /** Called with each new id as soon as it is chosen (for streaming); awaited before the next step. */
  onToken?: (id: number) => void | Promise<void>;
  /** Use the KV cache (default true); false recomputes the whole context every token (for comparison). */
  cache?: boolean;
}

/** The GPT model. Parameter names match Hugging Face GPT-2 (`transformer.` prefix omitted). */
export class GPT extends Module {
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  h: ModuleList<Block>;
  ln_f: LayerNorm;
  private positions = new Map<string, Tensor>();

  constructor(
    readonly config: GPTConfig,
    f: Factory = {},
  ) {
    super();
    const c = config;
    if (c.nEmbd % c.nHead !== 0) throw new OpError('GPT', `nEmbd ${c.nEmbd} must be a multiple of nHead ${c.nHead}`);
    this.wte = new Embedding(c.vocabSize, c.nEmbd, f);
    this.wpe = new Embedding(c.blockSize, c.nEmbd, f);
    this.drop = new Dropout(c.dropout, f.generator);
    this.h = new ModuleList(Array.from({ length: c.nLayer }, () => new Block(c, f)));
    this.ln_f = new LayerNorm(c.nEmbd, { bias: c.bias, device: f.device });
    // GPT-2 initialization: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 nLayer)
    noGrad(() => {
      for (const [name, p] of this.namedParameters()) {
        if (name.endsWith('.bias')) init.zeros_(p);
        else if (p.ndim === 2)
          init.normal_(p, 0, name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02, f.generator);
      }
    });
  }

  /** Position ids 0..T-1, created once per (device, length) and kept until `dispose()`. */
  private positionIds(T: number, device: DeviceLike): Tensor {
    const key = `${String(device)}/${T}`;
    let p = this.positions.get(key);
    if (!p) this.positions.set(key, (p = keep(arange(0, T, 1, { device }))));
    return p;
  }

  /** Frees the parameters, buffers and the cached position ids. */
  override dispose(): void {
    for (const p of this.positions.values()) p.dispose();
    this.positions.clear();
    super.dispose();
  }

  /** Token ids (B, T) -> logits (B, T, vocabSize). */
  forward(idx: Tensor): Tensor {
    if (idx.ndim !== 2) throw new OpError('GPT', `input ids must be (B, T), got [${idx.shape.join(', ')}]`);
    const [, T] = idx.shape as [number, number];
    if (T > this.config.blockSize)
      throw new OpError('GPT', `sequence length ${T} exceeds the context length ${this.config.blockSize}`);
    return tidy(() => {
      const tok = this.wte.forward(idx); // (B, T, C)
      const pos = this.wpe.forward(this.positionIds(T, idx.device)); // (T, C), broadcast over B
      let x = this.drop.forward(tok.add(pos)); // (B, T, C)
      for (const block of this.h) x = block.forward(x); // (B, T, C)
      x = this.ln_f.forward(x);
      return this.head(x); // (B, T, V)
    });
  }

  /** The tied output head, (B, T, C) @ (C, V) -> (B, T, V); float16 under autocast (see nn/autocast.ts). */
  private head(x: Tensor): Tensor {
    return matmul(autocastOperand(x), autocastOperand(this.wte.weight).transpose());
  }

  /**
   * Mean next-token cross-entropy of ids (B, T) against targets (B, T). Computed from float32 logits, also
   * when autocast made them float16: the log-sum-exp statistics need float32's range and precision.
   */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return tidy(() => {
      const logits = this.forward(idx).cast('float32'); // (B, T, V)
      const V = this.config.vocabSize;
      return F.crossEntropy(logits.reshape([-1, V]), targets.reshape([-1])); // (B*T, V) vs (B*T)
    });
  }

  /** Empty key/value caches for `batch` sequences of up to blockSize positions, on the model's device. */
  createCache(batch = 1): GPTCache {
    const c = this.config;
    const w = this.wte.weight;
    const hs = c.nEmbd / c.nHead;
    return new GPTCache(
      Array.from(
        { length: c.nLayer },
        () => new KVCache(batch, c.nHead, c.blockSize, hs, { device: w.device, dtype: w.dtype }),
      ),
    );
  }

  /**
   * Logits of T new token ids (B, T) at positions cache.length.. (B, T, V), attending over the positions
   * already in `cache`, which then holds T more. With `lastOnly`, only the last position's logits (B, 1, V)
   * are computed (the vocabulary matmul dominates a decoding step). Inference only (noGrad); equal to
   * `forward` on the whole sequence at those positions.
   */
  forwardCached(idx: Tensor, cache: GPTCache, opts: { lastOnly?: boolean } = {}): Tensor {
    if (idx.ndim !== 2) throw new OpError('GPT', `input ids must be (B, T), got [${idx.shape.join(', ')}]`);
    const [, T] = idx.shape as [number, number];
    const start = cache.length;
    if (start + T > this.config.blockSize)
      throw new OpError(
        'GPT',
        `positions [${start}, ${start + T}) exceed the context length ${this.config.blockSize}; start a new cache`,
      );
    const out = noGrad(() =>
      tidy(() => {
        const tok = this.wte.forward(idx); // (B, T, C)
        const pos = this.wpe.forward(this.positionIds(this.config.blockSize, idx.device).narrow(0, start, T)); // (T, C)
        let x = this.drop.forward(tok.add(pos)); // (B, T, C)
        let l = 0;
        for (const block of this.h) x = block.forwardCached(x, cache.layers[l++]!, start); // (B, T, C)
        if (opts.lastOnly && T > 1) x = x.narrow(1, T - 1, 1); // (B, 1, C)
        x = this.ln_f.forward(x);
        return this.head(x); // (B, T or 1, V)
      }),
    );
    cache.length = start + T;
    return out;
  }

  /**
   * Extends `prompt` by up to `maxNewTokens` sampled ids (one host read of the last logits per token)
   * and returns prompt + new ids. Runs in eval mode (no dropout), restoring the mode after.
   *
   * A prompt longer than blockSize is cropped to its last blockSize ids. With the cache (default), the
   * prompt is prefilled in one forward, then each token is one step over the cache. Learned positions end
   * at blockSize: when the cache is full, it restarts from the last blockSize/2 ids (one prefill), so the
   * context then spans between half and a whole block. Without the cache, every token recomputes the last
   * min(length, blockSize) ids, a window sliding one token at a time.
   */
  async generate(prompt: readonly number[], maxNewTokens: number, opts: GenerateOptions = {}): Promise<number[]> {
    const ids = [...prompt];
    if (ids.length === 0) throw new OpError('GPT.generate', 'the prompt must have at least one token');
    const V = this.config.vocabSize;
    const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= V);
    if (bad >= 0) throw new OpError('GPT.generate', `prompt id ${ids[bad]} at position ${bad} is not in [0, ${V})`);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0)
      throw new OpError('GPT.generate', `maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
    const sampler = new Sampler(opts);
    if (maxNewTokens === 0) return ids;
    const wasTraining = this.training;
    this.eval();
    const device = this.wte.weight.device;
    const bs = this.config.blockSize;
    const input = (ctx: readonly number[]) => tensor(new Int32Array(ctx), { shape: [1, ctx.length], device });
    /** The last row of (1, T, V) logits on the host, freeing the device tensor. */
    const lastRow = async (logits: Tensor): Promise<ArrayLike<number>> => {
      const T = logits.shape[1]!;
      const row = noGrad(() => tidy(() => logits.narrow(1, T - 1, 1).reshape([V]))); // (V)
      const host = await row.toArray();
      row.dispose();
      logits.dispose();
      return host;
    };
    const cache = opts.cache === false ? null : this.createCache(1);
    try {
      const run = (ctx: readonly number[]): Tensor =>
        tidy(() => {
          const x = input(ctx);
          if (!cache) return noGrad(() => this.forward(x)); // (1, T, V)
          if (cache.length + ctx.length > bs) cache.length = 0;
          return this.forwardCached(x, cache, { lastOnly: true }); // (1, 1, V)
        });
      let logits = run(ids.slice(-bs));
      for (let i = 0; ; i++) {
        const next = sampler.sample(await lastRow(logits)); // frees logits
        ids.push(next);
        if (opts.onToken) await opts.onToken(next);
        if (next === opts.eosId || i === maxNewTokens - 1) return ids;
        if (!cache) logits = run(ids.slice(-bs));
        else if (cache.length < bs) logits = run([next]);
        else logits = run(ids.slice(-Math.ceil(bs / 2)));
      }
    } finally {
      cache?.dispose();
      this.train(wasTraining);
    }
  }
}
