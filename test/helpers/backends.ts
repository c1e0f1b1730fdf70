// Runs the same test body on every backend present. CPU always runs; WebGPU runs when
// TL_TEST_WEBGPU=1 (CI sets it), and then a missing adapter is a loud failure, never a silent skip.
import { describe, test } from 'node:test';
import type { DType } from '../../src/core/dtype.js';
import type { DeviceName } from '../../src/backend/backend.js';
import { getBackend, initWebGPU } from '../../src/index.js';

/** True when the run asked for the WebGPU suite. */
export const webgpuRequested = process.env.TL_TEST_WEBGPU === '1';

/** Backends the suite runs on, in order. */
export const TEST_DEVICES: readonly DeviceName[] = webgpuRequested ? ['cpu', 'webgpu'] : ['cpu'];

/** Why WebGPU could not start (null when it started or was not requested). */
const webgpuError: Error | null = webgpuRequested
  ? await initWebGPU().then(
      () => null,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    )
  : null;

/** The dtypes of `wanted` that `device` supports (float16 needs shader-f16 on WebGPU). */
export function dtypesOn<D extends DType>(device: DeviceName, wanted: readonly D[]): D[] {
  const have = getBackend(device).caps.dtypes;
  return wanted.filter((d) => have.includes(d));
}

/**
 * Declares `body` once per backend inside a `describe('[device]')`. When WebGPU was requested but
 * did not start, a failing test says why.
 */
export function forEachBackend(body: (device: DeviceName) => void): void {
  for (const device of TEST_DEVICES) {
    describe(`[${device}]`, () => {
      if (device === 'webgpu' && webgpuError) {
        test('webgpu backend is available', () => {
          throw new Error(`TL_TEST_WEBGPU=1 but WebGPU did not start: ${webgpuError.message}`);
        });
        return;
      }
      body(device);
    });
  }
}
