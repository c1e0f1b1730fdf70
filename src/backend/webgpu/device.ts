// WebGPU adapter and device acquisition (real GPU first, then the GL-ES software fallback in Node),
// adapter facts, and error tracking: device loss, validation and out-of-memory errors become a clear
// Error thrown by the next backend call, never a hang or a silently wrong result.
/// <reference types="@webgpu/types" />
import { config } from '../../core/config.js';

/** What was found: the adapter's identity and the features/limits the device was created with. */
export interface AdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** Dawn backend ('vulkan', 'metal', 'd3d12', 'opengles', ...) or 'browser'. */
  readonly backend: string;
  readonly featureLevel: 'core' | 'compatibility';
  readonly isFallbackAdapter: boolean;
  /** True for CPU emulation (llvmpipe, lavapipe, SwiftShader, WARP, or a fallback adapter). */
  readonly software: boolean;
  /** Features enabled on the device. */
  readonly features: readonly string[];
}

/** Options of `acquireDevice`. */
export interface AcquireOptions {
  /** Dawn backend to force in Node ('vulkan', 'opengles', ...); default: config.webgpuBackend, then auto. */
  readonly backend?: string;
  /** A GPU object to use instead of navigator.gpu / Dawn (tests, custom setups). */
  readonly gpu?: GPU;
  readonly powerPreference?: GPUPowerPreference;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|basic render|warp/i;
const WANTED_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'];
const WANTED_LIMITS = [
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension', 'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize',
  'maxUniformBufferBindingSize', 'maxBindGroups', 'maxDynamicUniformBuffersPerPipelineLayout',
] as const; // prettier-ignore

interface Found {
  adapter: GPUAdapter;
  backend: string;
  featureLevel: 'core' | 'compatibility';
  software: boolean;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** The backend Dawn picks by default on this platform (it is not reported by the adapter). */
function dawnDefaultBackend(): string {
  const platform = (globalThis as { process?: { platform?: string } }).process?.platform;
  return platform === 'darwin' ? 'metal' : platform === 'win32' ? 'd3d12' : 'vulkan';
}

function browserGPU(): GPU | undefined {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
}

function isSoftware(a: GPUAdapter): boolean {
  const i = a.info;
  return i.isFallbackAdapter === true || SOFTWARE.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`);
}

async function tryAdapter(gpu: GPU, backend: string, compat: boolean, pp?: GPUPowerPreference): Promise<Found | null> {
  const opts: GPURequestAdapterOptions = compat ? { featureLevel: 'compatibility' } : {};
  if (pp) opts.powerPreference = pp;
  const adapter = await gpu.requestAdapter(opts);
  if (!adapter) return null;
  const level = compat && !adapter.features.has('core-features-and-limits') ? 'compatibility' : 'core';
  return { adapter, backend, featureLevel: level, software: isSoftware(adapter) };
}

async function nodeAdapter(o: AcquireOptions): Promise<Found | null> {
  const { createNodeGPU } = await import('./node-gpu.js');
  const forced = o.backend ?? config.webgpuBackend;
  if (forced !== '') {
    const gpu = createNodeGPU(forced);
    return (
      (await tryAdapter(gpu, forced, false, o.powerPreference)) ?? tryAdapter(gpu, forced, true, o.powerPreference)
    );
  }
  // Real GPU first (Dawn's default backend), then GL-ES (Mesa llvmpipe on machines without a GPU); a
  // software default adapter (lavapipe) is kept unless GL-ES finds hardware, since it has more features.
  const first = await tryAdapter(createNodeGPU(''), dawnDefaultBackend(), false, o.powerPreference);
  if (first && !first.software) return first;
  const gl = await tryAdapter(createNodeGPU('opengles'), 'opengles', true, o.powerPreference);
  if (gl && !gl.software) return gl;
  return first ?? gl;
}

/**
 * An acquired device plus the error state the runtime checks: the first device loss, uncaptured error
 * or error-scope failure is kept and thrown by `check()` (and by every later backend call).
 */
export class GpuDevice {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly limits: GPUSupportedLimits;
  /** shader-f16 is enabled (float16 tensors can live on this device). */
  readonly f16: boolean;
  readonly timestampQuery: boolean;
  readonly subgroups: boolean;
  private failure: Error | null = null;
  private pending: Promise<void>[] = [];
  private destroyed = false;

  constructor(device: GPUDevice, adapter: AdapterSummary) {
    this.device = device;
    this.adapter = adapter;
    this.limits = device.limits;
    this.f16 = device.features.has('shader-f16');
    this.timestampQuery = device.features.has('timestamp-query');
    this.subgroups = device.features.has('subgroups');
    void device.lost.then((info) => {
      if (!this.destroyed) this.fail(new Error(`WebGPU device lost (${info.reason}): ${info.message}`));
    });
    device.addEventListener('uncapturederror', (ev) => {
      const e = ev.error;
      this.fail(new Error(`WebGPU error: ${e.message}`));
    });
  }

  /** Records the first failure (later ones are usually consequences of it). */
  fail(e: Error): void {
    this.failure ??= e;
  }

  /** Throws the recorded failure, if any. */
  check(): void {
    if (this.destroyed) throw new Error('WebGPU backend was destroyed (destroyWebGPU); initialize it again');
    if (this.failure) throw this.failure;
  }

  /**
   * Runs `fn` inside an error scope of `filter`; an error it raises (asynchronously) is recorded with
   * the message `what()` + the driver's text, and surfaces at the next `settle()`/`check()`.
   */
  scoped<T>(filter: GPUErrorFilter, what: () => string, fn: () => T): T {
    this.device.pushErrorScope(filter);
    let out: T;
    try {
      out = fn();
    } finally {
      const p = this.device.popErrorScope().then(
        (err) => {
          if (err) this.fail(new Error(`${what()}: ${err.message}`));
        },
        (err: unknown) => this.fail(new Error(`${what()}: ${String(err)}`)),
      );
      this.pending.push(p);
    }
    return out;
  }

  /** Waits for the outcome of every error scope opened so far, then throws the first failure if any. */
  async settle(): Promise<void> {
    while (this.pending.length > 0) {
      const ps = this.pending;
      this.pending = [];
      await Promise.all(ps);
    }
    this.check();
  }

  /**
   * Creates a buffer of `size` bytes; a size over the device limit throws at once, an out-of-memory
   * error surfaces (naming the size) at the next sync point.
   */
  createBuffer(size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    this.check();
    const max = this.limits.maxBufferSize;
    if (size > max)
      throw new RangeError(
        `webgpu: cannot allocate a ${label} of ${size} bytes: the device's maxBufferSize is ${max} bytes`,
      );
    const what = (): string => `webgpu: out of memory allocating a ${label} of ${size} bytes`;
    try {
      return this.scoped('out-of-memory', what, () => this.device.createBuffer({ size, usage, label }));
    } catch (e) {
      throw new RangeError(`${what()} (${(e as Error).message})`);
    }
  }

  /** Destroys the device (later calls throw a clear error instead of touching it). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
  }
}

function summarize(f: Found, device: GPUDevice): AdapterSummary {
  const i = f.adapter.info;
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    backend: f.backend,
    featureLevel: f.featureLevel,
    isFallbackAdapter: i.isFallbackAdapter === true,
    software: f.software,
    features: [...device.features].map(String).sort(),
  };
}

/**
 * Finds an adapter and creates a device with the adapter's real limits and the wanted optional
 * features (shader-f16, timestamp-query, subgroups) where present. Order: an injected GPU, else
 * navigator.gpu in browsers, else in Node the backend forced by `opts.backend` / TL_WEBGPU_BACKEND,
 * else Dawn's default backend (a real GPU), else GL-ES (software llvmpipe). Throws when none is found.
 */
export async function acquireDevice(opts: AcquireOptions = {}): Promise<GpuDevice> {
  let found: Found | null;
  const gpu = opts.gpu ?? (isNode() ? undefined : browserGPU());
  if (gpu) {
    found =
      (await tryAdapter(gpu, 'browser', false, opts.powerPreference)) ??
      (await tryAdapter(gpu, 'browser', true, opts.powerPreference));
  } else if (isNode()) {
    found = await nodeAdapter(opts);
  } else {
    throw new Error(
      'WebGPU is not available: navigator.gpu is missing (use a WebGPU-enabled browser, or Node with the webgpu package)',
    );
  }
  if (!found) {
    const forced = opts.backend ?? config.webgpuBackend;
    throw new Error(
      `WebGPU: no adapter found${forced ? ` for backend '${forced}'` : ' (tried the default backend and GL-ES)'}`,
    );
  }
  const a = found.adapter;
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) requiredLimits[k] = a.limits[k];
  const requiredFeatures = WANTED_FEATURES.filter((f) => a.features.has(f));
  const device = await a.requestDevice({ requiredLimits, requiredFeatures, label: 'tensorloom' });
  return new GpuDevice(device, summarize(found, device));
}
