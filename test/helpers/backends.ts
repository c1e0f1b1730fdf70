// Runs the same test body on every backend present. CPU always runs; WebGPU runs when
// TL_TEST_WEBGPU=1, and then a missing adapter is a loud failure, never a silent skip.
import { describe, test } from 'node:test';
import type { DeviceName } from '../../src/backend/backend.js';

/** True when the run asked for the WebGPU suite (CI sets TL_TEST_WEBGPU=1). */
export const webgpuRequested = process.env.TL_TEST_WEBGPU === '1';

/** Backends the suite runs on, in order. */
export const TEST_DEVICES: readonly DeviceName[] = webgpuRequested ? ['cpu', 'webgpu'] : ['cpu'];

/**
 * Declares `body` once per backend inside a `describe('[device]')`. When WebGPU was requested but
 * is not implemented or has no adapter, a failing test says so.
 */
export function forEachBackend(body: (device: DeviceName) => void): void {
  for (const device of TEST_DEVICES) {
    describe(`[${device}]`, () => {
      if (device === 'webgpu') {
        test('webgpu backend is available', () => {
          throw new Error('TL_TEST_WEBGPU=1 but the WebGPU backend is not available in this build');
        });
        return;
      }
      body(device);
    });
  }
}
