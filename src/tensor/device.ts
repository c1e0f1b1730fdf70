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

/** Sets the default device for new tensors (it must be initialized). */
export function setDefaultDevice(device: DeviceName): void {
  getBackend(device);
  defaultDevice = device;
}
