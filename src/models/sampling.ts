// Host-side next-token sampling from one row of logits: greedy (argmax), temperature, top-k and top-p
// (nucleus) filtering, drawn with a seeded counter-based generator so that a seed reproduces a sample.
import { OpError } from '../core/errors.js';
import { seedToKey, threefry2x32 } from '../core/random.js';

/** How the next token is chosen. */
export interface SamplingOptions {
  /** Softmax temperature (> 0; default 1). 0 means greedy. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). Ties with the k-th are kept, as in torch. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p, in (0, 1] (1: all). */
  topP?: number;
  /** Always take the most likely token (the first one on ties); ignores the other options. */
  greedy?: boolean;
  /** Seed of the generator (any safe integer; default 0). */
  seed?: number;
}

/** Index of the largest value (the first one on ties); NaN entries are never chosen. */
export function argmax(values: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > bestV || (best < 0 && v === -Infinity)) [best, bestV] = [i, v];
  }
  if (best < 0) throw new OpError('sample', `cannot pick from ${values.length} logits that are all NaN or empty`);
  return best;
}

/** Checks the options once, with errors naming the option and the value. */
function checkOptions(o: SamplingOptions): void {
  const t = o.temperature ?? 1;
  if (!(t >= 0) || !Number.isFinite(t)) throw new OpError('sample', `temperature must be >= 0, got ${t}`);
  const k = o.topK ?? 0;
  if (!Number.isInteger(k) || k < 0) throw new OpError('sample', `topK must be an integer >= 0, got ${k}`);
  const p = o.topP ?? 1;
  if (!(p > 0 && p <= 1)) throw new OpError('sample', `topP must be in (0, 1], got ${p}`);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed))
    throw new OpError('sample', `seed must be a safe integer, got ${o.seed}`);
}

/**
 * Chooses token ids from logits. Each `sample` call draws one uniform from (seed, call number), so the
 * same seed and the same logits give the same ids on every run and backend.
 */
export class Sampler {
  private readonly key: [number, number];
  private counter = 0;
  private readonly opts: Required<SamplingOptions>;

  constructor(opts: SamplingOptions = {}) {
    checkOptions(opts);
    this.opts = {
      temperature: opts.temperature ?? 1,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      greedy: opts.greedy ?? false,
      seed: opts.seed ?? 0,
    };
    this.key = seedToKey(this.opts.seed);
  }

  /** Whether the sampler always takes the argmax (no randomness is drawn). */
  get isGreedy(): boolean {
    return this.opts.greedy || this.opts.temperature === 0;
  }

  /** The next uniform in [0, 1), with 53 random bits. */
  uniform(): number {
    const [a, b] = threefry2x32(this.key[0], this.key[1], this.counter++, 0x5a4d504c);
    return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;
  }

  /**
   * The filtered, renormalized distribution the sampler draws from: unnormalized weights (0 outside the
   * allowed set) and their sum. Exposed so that tests can check frequencies against it.
   */
  weights(logits: ArrayLike<number>): { weights: Float64Array; total: number } {
    const V = logits.length;
    if (V === 0) throw new OpError('sample', 'cannot sample from an empty row of logits');
    const { temperature, topK, topP } = this.opts;
    const w = new Float64Array(V);
    let m = -Infinity;
    for (let i = 0; i < V; i++) if (logits[i]! > m) m = logits[i]!;
    if (!Number.isFinite(m)) throw new OpError('sample', `the largest logit is ${m}; cannot form probabilities`);
    for (let i = 0; i < V; i++) w[i] = Math.exp((logits[i]! - m) / temperature); // NaN logits give NaN, dropped below
    let threshold = 0;
    if ((topK > 0 && topK < V) || topP < 1) {
      // one native sort of the weights finds both cut-offs as values; ties with a cut-off are kept
      const sorted = Float64Array.from(w, (x) => (Number.isNaN(x) ? 0 : x)).sort();
      const kept = topK > 0 && topK < V ? topK : V;
      threshold = sorted[V - kept]!;
      if (topP < 1) {
        let mass = 0;
        for (let j = V - 1; j >= V - kept; j--) mass += sorted[j]!;
        let acc = 0;
        for (let j = V - 1; j >= V - kept; j--) {
          acc += sorted[j]!;
          if (acc >= topP * mass) {
            threshold = Math.max(threshold, sorted[j]!);
            break;
          }
        }
      }
    }
    let total = 0;
    for (let i = 0; i < V; i++) {
      const x = w[i]!;
      if (x >= threshold && x > 0) total += x;
      else w[i] = 0;
    }
    return { weights: w, total };
  }

  /** One token id from a row of logits (length = vocabulary size). */
  sample(logits: ArrayLike<number>): number {
    if (this.isGreedy) return argmax(logits);
    const { weights, total } = this.weights(logits);
    const u = this.uniform() * total;
    let acc = 0;
    let last = -1;
    for (let i = 0; i < weights.length; i++) {
      const x = weights[i]!;
      if (x === 0) continue;
      acc += x;
      last = i;
      if (u < acc) return i;
    }
    return last; // rounding left u at or past the total: the last allowed id
  }
}
