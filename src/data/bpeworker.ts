// The worker-thread side of parallel BPE encoding (see bpeworkers.ts): builds the tokenizer sent in
// workerData once, then encodes each text chunk it is sent and posts the ids back (transferred, not copied).
import { parentPort, workerData } from 'node:worker_threads';
import { BPETokenizer } from './bpe.js';

/** What the main thread sends when it starts a worker. */
export interface BPEWorkerInit {
  readonly vocab: Record<string, number>;
  readonly merges: (readonly [string, string])[];
}

/** One chunk to encode, and its answer. */
export interface BPEWorkerJob {
  readonly index: number;
  readonly text: string;
}

if (parentPort) {
  const port = parentPort;
  const init = workerData as BPEWorkerInit;
  const tok = new BPETokenizer(init.vocab, init.merges, []);
  port.on('message', (job: BPEWorkerJob) => {
    const ids = tok.encode(job.text, { allowSpecial: false });
    port.postMessage({ index: job.index, ids }, [ids.buffer as ArrayBuffer]);
  });
}
