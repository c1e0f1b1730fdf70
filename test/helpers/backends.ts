// Runs the same test body on every backend present. CPU always runs; WebGPU runs when
// TL_TEST_WEBGPU=1 (CI sets it), and then a missing adapter is a loud failure, never a silent skip.
// TL_TEST_WEBGPU=f16 is CI's float16 pass (on lavapipe): the bodies run on WebGPU only (the CPU ran in
// the main pass) and an adapter without float16 fails instead of skipping the float16 cases.
import { before, describe, test } from 'node:test';
import type { DType } from '../../src/core/dtype.js';
import type { DeviceName } from '../../src/backend/backend.js';
import { getBackend, initWebGPU, setDefaultDevice } from '../../src/index.js';

/** TL_TEST_WEBGPU=f16: WebGPU only, and it must have float16. */
const f16Pass = process.env.TL_TEST_WEBGPU === 'f16';

/** True when the run asked for the WebGPU suite. */
export const webgpuRequested = process.env.TL_TEST_WEBGPU === '1' || f16Pass;

/** Backends the suite runs on, in order. */
export const TEST_DEVICES: readonly DeviceName[] = f16Pass ? ['webgpu'] : webgpuRequested ? ['cpu', 'webgpu'] : ['cpu'];

/** Why WebGPU could not start (null when it started or was not requested). */
const webgpuError: Error | null = webgpuRequested
  ? await initWebGPU().then(
      () => null,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    )
  : null;

/**
 * The dtypes of `wanted` that `device` supports (float16 needs shader-f16 on WebGPU). The CPU backend is
 * the reference and holds every dtype: a dtype missing there throws here instead of silently dropping
 * the CPU's cases. A backend without a dtype has that refusal tested once (test/ops/creation.test.ts).
 */
export function dtypesOn<D extends DType>(device: DeviceName, wanted: readonly D[]): D[] {
  const have = getBackend(device).caps.dtypes;
  const missing = wanted.filter((d) => !have.includes(d));
  if (device === 'cpu' && missing.length > 0)
    throw new Error(`the cpu backend must support every dtype; it lacks ${missing.join(', ')}`);
  return wanted.filter((d) => have.includes(d));
}

/**
 * Options of a test that needs every dtype of `needed`: on a device lacking one the test is reported
 * as skipped, with the reason (never on the CPU, see `dtypesOn`).
 */
export function needsDTypes(device: DeviceName, needed: readonly DType[]): { skip?: string } {
  const have = dtypesOn(device, needed);
  const missing = [...new Set(needed.filter((d) => !have.includes(d)))];
  return missing.length > 0 ? { skip: `${device} does not support ${missing.join(', ')}` } : {};
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
      if (device === 'webgpu' && f16Pass && !getBackend('webgpu').caps.dtypes.includes('float16')) {
        test('webgpu backend has float16', () => {
          throw new Error(`TL_TEST_WEBGPU=f16 but the WebGPU adapter has no float16 (shader-f16)`);
        });
        return;
      }
      body(device);
    });
  }
}

/**
 * `forEachBackend` for tests written against the default device (tensors created without a device):
 * each backend's suite makes its device the default before its tests run. The suites of a file run one
 * after the other, so the default never changes under a running test.
 */
export function forEachBackendAsDefault(body: (device: DeviceName) => void): void {
  forEachBackend((device) => {
    before(() => setDefaultDevice(device));
    body(device);
  });
}
