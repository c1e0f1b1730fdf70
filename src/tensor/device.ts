// Device resolution: which backend a name refers to, and the default device for new tensors.
import { TensorloomError } from '../core/errors.js';
import { config } from '../core/config.js';
import { findBackend, registerBackend, registeredBackends, type Backend, type DeviceName } from '../backend/backend.js';
import { createCpuBackend } from '../backend/cpu/index.js';

/** A device argument: a concrete device or 'auto' (the default device). */
export type DeviceLike = DeviceName | 'auto';

let defaultDevice: DeviceName | undefined;

function cpu(): Backend {
  let b = findBackend('cpu');
  if (!b) {
    b = createCpuBackend();
    registerBackend(b);
  }
  return b;
}

/** The backend for a device name; 'auto' or undefined means the default device. */
export function getBackend(device?: DeviceLike): Backend {
  const name = device === undefined || device === 'auto' ? getDefaultDevice() : device;
  if (name === 'cpu') return cpu();
  const b = findBackend(name);
  if (!b) {
    throw new TensorloomError(
      `device '${name}' is not initialized (initialized: ${['cpu', ...registeredBackends().filter((n) => n !== 'cpu')].join(', ')}); ` +
        `call 'await initWebGPU()' first`,
    );
  }
  return b;
}

/**
 * The device new tensors go to when none is given: set by `setDefaultDevice`, else TL_DEVICE when it
 * names an initialized device, else WebGPU when initialized, else cpu.
 */
export function getDefaultDevice(): DeviceName {
  if (defaultDevice) return defaultDevice;
  if (config.device === 'cpu' || config.device === 'webgpu') {
    if (findBackend(config.device) || config.device === 'cpu') return config.device;
  }
  return findBackend('webgpu') ? 'webgpu' : 'cpu';
}

/** Options of `initWebGPU` (see the WebGPU backend's acquireDevice). */
export interface WebGPUOptions {
  /** Dawn backend to force in Node ('vulkan', 'opengles', ...); default TL_WEBGPU_BACKEND, then automatic. */
  backend?: string;
  /** Accept a software adapter (llvmpipe, lavapipe, SwiftShader). Default true. */
  allowSoftware?: boolean;
}

/**
 * Finds a WebGPU adapter (a real GPU first; in Node, Dawn's GL-ES software fallback after it),
 * creates the device and registers the 'webgpu' backend. Idempotent. The WebGPU code, and in Node
 * the Dawn binding, are loaded only here, so CPU-only programs never load them.
 */
export async function initWebGPU(opts: WebGPUOptions = {}): Promise<Backend> {
  const existing = findBackend('webgpu');
  if (existing) return existing;
  const mod = await import('../backend/webgpu/index.js');
  const b = await mod.initWebGPU(opts.backend !== undefined ? { backend: opts.backend } : {});
  if (b.caps.software && opts.allowSoftware === false) {
    mod.destroyWebGPU(b);
    throw new TensorloomError(`initWebGPU: the only adapter found is a software one (${b.caps.description})`);
  }
  registerBackend(b);
  return b;
}

/** The device chosen for a request, and why (for `loom info` and logs). */
export interface DeviceChoice {
  device: DeviceName;
  reason: string;
}

/**
 * Resolves 'auto' | 'cpu' | 'webgpu' to an initialized device. 'auto' takes WebGPU only on a real
 * (hardware) adapter: a software adapter is slower than the CPU backend, so it is used only when asked
 * for by name. 'webgpu' fails loudly when no adapter exists.
 */
export async function chooseDevice(want: DeviceLike): Promise<DeviceChoice> {
  if (want === 'cpu') return { device: 'cpu', reason: 'requested' };
  if (want === 'webgpu') {
    const b = await initWebGPU();
    return { device: 'webgpu', reason: `requested; adapter: ${b.caps.description}` };
  }
  try {
    const b = await initWebGPU({ allowSoftware: false });
    return { device: 'webgpu', reason: `WebGPU adapter found: ${b.caps.description}` };
  } catch (e) {
    return { device: 'cpu', reason: `WebGPU not used: ${(e as Error).message}` };
  }
}

/** Sets the default device for new tensors (it must be initialized). */
export function setDefaultDevice(device: DeviceName): void {
  getBackend(device);
  defaultDevice = device;
}
