// A GPT language model as nanoGPT and GPT-2 define it: token + learned position embeddings,
// pre-LayerNorm blocks of causal self-attention and a tanh-GELU MLP, a final LayerNorm, and an
// output head tied to the token embedding. Module order: MLP, Block, GPT.
import { OpError } from '../core/errors.js';
import {
  CausalSelfAttention,
  Dropout,
  Embedding,
  F,
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
  softmax,
  tensor,
  tidy,
  type DeviceLike,
  type Generator,
  type Tensor,
} from '../tensor/index.js';

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
  forward(x: Tensor): Tensor {
    return tidy(() => this.dropout.forward(this.c_proj.forward(this.c_fc.forward(x).gelu()))); // (B, T, C)
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
    return tidy(() => {
      const h = x.add(this.attn.forward(this.ln_1.forward(x))); // (B, T, C)
      return h.add(this.mlp.forward(this.ln_2.forward(h))); // (B, T, C)
    });
  }
}

/** Options of `GPT.generate`. */
export interface GenerateOptions {
  /** Softmax temperature; 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). */
  topK?: number;
  /** Seed of the host-side sampler. */
  seed?: number;
}

/** The GPT model. Parameter names match Hugging Face GPT-2 (`transformer.` prefix omitted). */
export class GPT extends Module {
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  h: ModuleList<Block>;
  ln_f: LayerNorm;
  private positions = new Map<number, Tensor>();

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

  /** Position ids 0..T-1, created once per length and kept. */
  private positionIds(T: number, device: DeviceLike): Tensor {
    let p = this.positions.get(T);
    if (!p) this.positions.set(T, (p = keep(arange(0, T, 1, { device }))));
    return p;
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
      return matmul(x, this.wte.weight.transpose()); // (B, T, C) @ (C, V) -> (B, T, V), tied head
    });
  }

  /** Mean next-token cross-entropy of ids (B, T) against targets (B, T). */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return tidy(() => {
      const logits = this.forward(idx); // (B, T, V)
      const V = this.config.vocabSize;
      return F.crossEntropy(logits.reshape([-1, V]), targets.reshape([-1])); // (B*T, V) vs (B*T)
    });
  }

  /**
   * Extends `prompt` by `maxNewTokens` sampled ids (the context is cropped to blockSize). One host
   * read per token: this is the simple path; generation with a KV cache comes with the GPT-2 work.
   */
  async generate(prompt: readonly number[], maxNewTokens: number, opts: GenerateOptions = {}): Promise<number[]> {
    const ids = [...prompt];
    if (ids.length === 0) throw new OpError('GPT.generate', 'the prompt must have at least one token');
    const temperature = opts.temperature ?? 1;
    let state = (opts.seed ?? 1) >>> 0 || 1;
    const uniform = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      return state / 4294967296;
    };
    const device = this.wte.weight.device;
    for (let i = 0; i < maxNewTokens; i++) {
      const ctx = ids.slice(-this.config.blockSize);
      const probsT = noGrad(() =>
        tidy(() => {
          const logits = this.forward(tensor(new Int32Array(ctx), { shape: [1, ctx.length], device })); // (1, T, V)
          const last = logits.select(1, ctx.length - 1).reshape([-1]); // (V)
          return temperature > 0 ? softmax(last.div(temperature)) : last;
        }),
      );
      const p = await probsT.toArray();
      probsT.dispose();
      ids.push(temperature > 0 ? sampleFrom(p, opts.topK ?? 0, uniform()) : argmaxOf(p));
    }
    return ids;
  }
}

function argmaxOf(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return best;
}

/** Samples an index from probabilities `p`, restricted to the top k when k > 0. */
function sampleFrom(p: ArrayLike<number>, k: number, u: number): number {
  let idx = Array.from({ length: p.length }, (_, i) => i);
  if (k > 0 && k < p.length) idx = idx.sort((a, b) => p[b]! - p[a]!).slice(0, k);
  const total = idx.reduce((s, i) => s + p[i]!, 0);
  let acc = 0;
  for (const i of idx) {
    acc += p[i]! / total;
    if (u < acc) return i;
  }
  return idx[idx.length - 1]!;
}
