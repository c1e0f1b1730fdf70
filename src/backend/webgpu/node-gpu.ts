// Node-only: a WebGPU `GPU` object from the `webgpu` npm package (Dawn). Loaded only through a dynamic
// import() from device.ts, so browsers and CPU-only programs never load Dawn.
import { create, globals } from 'webgpu';
import { config } from '../../core/config.js';

/**
 * Every GPU object created here. Dawn crashes the process (SIGSEGV, mutex assertions or hangs) when
 * one is garbage-collected while a device it made is alive, so they stay referenced for the
 * process lifetime; with them referenced, processes exit by themselves.
 */
const instances: GPU[] = [];
let globalsInstalled = false;

/**
 * Creates a Dawn GPU object for Dawn backend `backend` ('' for Dawn's default: Vulkan / Metal /
 * D3D12; 'opengles', 'vulkan', ...). Installs the WebGPU globals (GPUBufferUsage, ...) once. For
 * 'opengles' it sets EGL_PLATFORM=surfaceless in the environment when unset (headless Mesa llvmpipe
 * needs it; a user's own value is kept).
 */
export function createNodeGPU(backend: string): GPU {
  if (!globalsInstalled) {
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  if (backend === 'opengles' && config.eglPlatform === '') {
    // eslint-disable-next-line no-restricted-properties -- a write for Dawn's EGL loader, not a config read
    process.env.EGL_PLATFORM = 'surfaceless';
  }
  let gpu: GPU;
  try {
    // Dawn rounds timestamps to 65.5 µs by default (a fingerprinting guard meant for browsers); the
    // profiler needs real resolution
    const toggles = ['disable-dawn-features=timestamp_quantization'];
    gpu = create(backend === '' ? toggles : [`backend=${backend}`, ...toggles]);
  } catch (e) {
    throw new Error(`WebGPU: cannot start Dawn${backend ? ` backend '${backend}'` : ''}: ${(e as Error).message}`);
  }
  instances.push(gpu);
  return gpu;
}
