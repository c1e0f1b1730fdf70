// A GPT frees everything it made: after a loss, a backward and dispose() of the loss, the gradients and the
// model, the live tensor and buffer counters are back where they were (the cached position ids included).
import { test } from 'node:test';
import { GPT, tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertMem, mem } from '../autograd/util.js';

forEachBackend((device) => {
  test('GPT.dispose frees the parameters, gradients and cached position ids', async () => {
    const base = mem(device);
    const model = new GPT(
      { vocabSize: 13, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16, dropout: 0, bias: true },
      {
        device,
      },
    );
    const idx = tensor(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), { shape: [2, 5], dtype: 'int32', device });
    for (let i = 0; i < 2; i++) {
      const loss = model.loss(idx, idx); // the second call reuses the cached positions
      loss.backward();
      await loss.toArray();
      loss.dispose();
    }
    model.dispose();
    idx.dispose();
    assertMem(device, base, 'after disposing the model');
  });
});
