// Parallel BPE encoding on Node worker threads: text chunks go to a small pool of workers, each holding
// its own copy of the tokenizer, and come back as ids in chunk order. Node only (loom prepare uses it).
import { Worker } from 'node:worker_threads';
import { TensorloomError } from '../core/errors.js';
import type { BPETokenizer } from './bpe.js';
import type { BPEWorkerInit, BPEWorkerJob } from './bpeworker.js';

/**
 * Encodes `chunks` (ordinary text, no special tokens) with `tok` on `threads` worker threads; resolves
 * with one id array per chunk, in order. `onChunk` is called as chunks finish, with the chunk's index.
 * The chunks must be cut at pre-token boundaries for the result to equal encoding the whole text.
 */
export async function encodeParallel(
  tok: BPETokenizer,
  chunks: readonly string[],
  threads: number,
  onChunk?: (index: number) => void,
): Promise<Int32Array[]> {
  const here = new URL(import.meta.url);
  const ext = here.pathname.endsWith('.ts') ? '.ts' : '.js'; // run from source (tsx) or from dist
  const entry = new URL(`./bpeworker${ext}`, here);
  const init: BPEWorkerInit = { vocab: tok.vocabObject(), merges: tok.merges.map(([a, b]) => [a, b] as const) };
  const results: Int32Array[] = new Array<Int32Array>(chunks.length);
  let next = 0;
  let done = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      if (chunks.length === 0) return resolve();
      const n = Math.max(1, Math.min(threads, chunks.length));
      for (let w = 0; w < n; w++) {
        // from source, the worker registers tsx itself first (loader hooks do not carry over to workers)
        const worker =
          ext === '.ts'
            ? new Worker(
                `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => t.register()).then(() => import(${JSON.stringify(entry.href)}))`,
                { eval: true, workerData: init, execArgv: [], name: 'tensorloom-bpe' },
              )
            : new Worker(entry, { workerData: init, execArgv: [], name: 'tensorloom-bpe' });
        workers.push(worker);
        const feed = () => {
          if (next < chunks.length) {
            const job: BPEWorkerJob = { index: next, text: chunks[next]! };
            next++;
            worker.postMessage(job);
          }
        };
        worker.on('message', (m: { index: number; ids: Int32Array }) => {
          results[m.index] = m.ids;
          onChunk?.(m.index);
          if (++done === chunks.length) resolve();
          else feed();
        });
        worker.on('error', (e) => reject(new TensorloomError(`BPE worker failed: ${e.message}`)));
        worker.on('exit', (code) => {
          if (done < chunks.length) reject(new TensorloomError(`BPE worker exited early (code ${code})`));
        });
        feed();
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
