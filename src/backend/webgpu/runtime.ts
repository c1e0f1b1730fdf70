// The WebGPU command recorder: one open encoder with one open compute pass, dispatches recorded into it
// and submitted in batches (on read/sync, or every MAX_BATCH dispatches); pipelines cached by program key,
// bind groups cached by buffers, uniforms packed into one arena buffer bound with dynamic offsets.
import { config } from '../../core/config.js';
import type { BackendStats } from '../backend.js';
import type { Dispatch, WgslProgram } from './kernel.js';
import type { GpuDevice } from './device.js';
import { asGpuBuffer, type GpuBuffer } from './pool.js';
import { GpuProfiler } from './profile.js';

/** Dispatches per submitted command buffer (bounds latency and the uniform arena's size). */
export const MAX_BATCH = 128;
/** Bytes of the uniform arena (holds one batch's uniforms; a batch that fills it is submitted early). */
const ARENA_BYTES = 256 * 1024;
/** Bind groups kept before the cache is cleared (bounds memory when buffers churn). */
const MAX_BIND_GROUPS = 8192;

interface PipelineEntry {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly sig: string;
}

/** Zero-fills words [0, n) of binding 0. */
const ZERO: WgslProgram = {
  key: 'tl.zero',
  code: () => `@group(0) @binding(0) var<storage, read_write> b: array<u32>;
struct U { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * 256u;
  if (i < u.n) { b[i] = 0u; }
}
`,
};

/** A dispatch's binding signature: 'r'/'w' per storage buffer, then 'u<bytes>' when it has uniforms. */
function signature(d: Dispatch): string {
  let s = '';
  for (const b of d.buffers) s += b.readOnly ? 'r' : 'w';
  return d.uniforms ? `${s}u` : s;
}

/** Records and submits the work of one device. */
export class Runtime {
  private readonly dev: GpuDevice;
  private readonly device: GPUDevice;
  private readonly counters: BackendStats;
  /** Per-kernel profiling (off by default: then one flag test per dispatch). */
  readonly profiler: GpuProfiler;
  private readonly pipelines = new Map<string, PipelineEntry>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly arena: GPUBuffer;
  private readonly arenaHost = new Uint8Array(ARENA_BYTES);
  private readonly arenaWords = new Uint32Array(this.arenaHost.buffer);
  private readonly align: number;
  private arenaUsed = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private lastPipeline: GPUComputePipeline | null = null;
  private batchDispatches = 0;
  private dirty = false;
  /** Serial of the open (unsubmitted) batch; buffers touched by it carry this serial. */
  serial = 0;

  constructor(dev: GpuDevice, counters: BackendStats) {
    this.dev = dev;
    this.device = dev.device;
    this.counters = counters;
    this.profiler = new GpuProfiler(dev);
    this.align = Math.max(16, dev.limits.minUniformBufferOffsetAlignment);
    this.arena = dev.createBuffer(ARENA_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'uniform arena');
  }

  /** The pipeline for `program` with binding signature `sig`, compiled on first use (counted in stats.compiles). */
  pipeline(program: WgslProgram, sig: string): PipelineEntry {
    const key = `${program.key}#${sig}`;
    let e = this.pipelines.get(key);
    if (e) return e;
    this.dev.check();
    const layout = this.layout(sig);
    const t0 = performance.now();
    const code = program.code();
    if (config.debug >= 3) console.log(`[webgpu] WGSL of ${program.key}:\n${code}`);
    const what = (): string => `webgpu: compiling kernel '${program.key}' failed`;
    const pipeline = this.dev.scoped('validation', what, () =>
      this.device.createComputePipeline({
        label: program.key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: {
          module: this.device.createShaderModule({ code, label: program.key }),
          entryPoint: program.entryPoint ?? 'main',
        },
      }),
    );
    this.counters.compiles++;
    if (config.debug >= 2) console.log(`[webgpu] compiled ${program.key} (${(performance.now() - t0).toFixed(1)} ms)`);
    e = { pipeline, layout, sig };
    this.pipelines.set(key, e);
    return e;
  }

  /** Compiles the pipelines of `dispatches` without recording anything (warmup). */
  prepare(dispatches: readonly Dispatch[]): void {
    for (const d of dispatches) this.pipeline(d.program, signature(d));
  }

  /** Records one dispatch into the open compute pass (submitting first when the batch is full). */
  record(d: Dispatch): void {
    const [x, y, z] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.dev.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new RangeError(
        `webgpu: kernel '${d.program.key}' asks for ${x}x${y}x${z} workgroups; the device allows ${maxDim} per dimension`,
      );
    }
    const sig = signature(d);
    const entry = this.pipeline(d.program, sig);
    const ubytes = d.uniforms ? Math.ceil(d.uniforms.byteLength / 16) * 16 : 0;
    if (this.arenaUsed + ubytes > ARENA_BYTES || this.batchDispatches >= MAX_BATCH) this.flush();
    const bufs = d.buffers.map((b) => asGpuBuffer(b.buffer, `webgpu kernel '${d.program.key}'`));
    checkAliasing(d, bufs);
    const bg = this.bindGroup(entry, bufs, ubytes);
    const timed = this.profiler.active && this.profiler.timestamps;
    const pass = timed ? this.openTimedPass(d.program.key) : this.openPass();
    if (entry.pipeline !== this.lastPipeline) {
      pass.setPipeline(entry.pipeline);
      this.lastPipeline = entry.pipeline;
    }
    if (d.uniforms) {
      const off = this.arenaUsed;
      this.arenaWords.set(d.uniforms, off / 4);
      this.arenaUsed += Math.ceil(ubytes / this.align) * this.align;
      pass.setBindGroup(0, bg, [off]);
    } else {
      pass.setBindGroup(0, bg);
    }
    pass.dispatchWorkgroups(x, y, z);
    if (timed) this.endPass();
    for (const b of bufs) b.batch = this.serial;
    this.batchDispatches++;
    this.counters.dispatches++;
    if (this.profiler.active) this.profiler.dispatched(d.program.key);
    this.dirty = true;
  }

  /** The open encoder with no pass open, for copy commands (ordered with the dispatches around them). */
  copyEncoder(): GPUCommandEncoder {
    this.endPass();
    this.dirty = true;
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  /** Submits the open batch (no-op when nothing was recorded). Uniforms go up in one writeBuffer first. */
  flush(): void {
    if (!this.dirty) return;
    const t0 = this.profiler.active ? performance.now() : 0;
    this.dev.check();
    this.endPass();
    const enc = this.encoder!;
    this.encoder = null;
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed);
    const n = this.batchDispatches;
    this.dev.scoped(
      'validation',
      () => `webgpu: a batch of ${n} dispatches failed validation`,
      () => {
        this.device.queue.submit([enc.finish()]);
      },
    );
    this.counters.submits++;
    if (this.profiler.active) this.profiler.submitted(performance.now() - t0);
    this.arenaUsed = 0;
    this.batchDispatches = 0;
    this.dirty = false;
    this.serial++;
  }

  /** Records a dispatch that zeroes the first `buf.requested` bytes (rounded up to words) of a buffer. */
  zero(buf: GpuBuffer): void {
    const words = Math.ceil(buf.requested / 4);
    buf.needsZero = false;
    if (words === 0) return;
    const u = new Uint32Array([words, 0, 0, 0]);
    const groups = Math.ceil(words / 256);
    const y = Math.ceil(groups / this.dev.limits.maxComputeWorkgroupsPerDimension);
    this.record({
      program: ZERO,
      buffers: [{ buffer: buf, readOnly: false }],
      uniforms: u,
      workgroups: [Math.ceil(groups / y), y, 1],
    });
  }

  /** Drops cached bind groups (after pooled buffers were destroyed). */
  clearBindGroups(): void {
    this.bindGroups.clear();
  }

  /** A new compute pass whose timestamps time the one dispatch of `key` recorded into it (profiling). */
  private openTimedPass(key: string): GPUComputePassEncoder {
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder();
    this.pass = this.encoder.beginComputePass(this.profiler.timedPass(key));
    this.lastPipeline = null;
    return this.pass;
  }

  private openPass(): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    this.encoder ??= this.device.createCommandEncoder();
    this.pass = this.encoder.beginComputePass();
    this.lastPipeline = null;
    return this.pass;
  }

  private endPass(): void {
    if (!this.pass) return;
    this.pass.end();
    this.pass = null;
    this.lastPipeline = null;
  }

  private layout(sig: string): GPUBindGroupLayout {
    let l = this.layouts.get(sig);
    if (l) return l;
    const entries: GPUBindGroupLayoutEntry[] = [];
    let i = 0;
    for (const c of sig) {
      if (c === 'u')
        entries.push({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: 'uniform', hasDynamicOffset: true },
        });
      else
        entries.push({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: c === 'r' ? 'read-only-storage' : 'storage' },
        });
      i++;
    }
    l = this.device.createBindGroupLayout({ entries, label: sig });
    this.layouts.set(sig, l);
    return l;
  }

  private bindGroup(e: PipelineEntry, bufs: readonly GpuBuffer[], ubytes: number): GPUBindGroup {
    let key = `${e.sig}:${ubytes}`;
    for (const b of bufs) key += `,${b.id}`;
    let bg = this.bindGroups.get(key);
    if (bg) return bg;
    const maxBind = this.dev.limits.maxStorageBufferBindingSize;
    const entries: GPUBindGroupEntry[] = bufs.map((b, i) => {
      if (b.requested > maxBind) {
        throw new RangeError(
          `webgpu: a tensor buffer of ${b.requested} bytes exceeds the device's maxStorageBufferBindingSize (${maxBind} bytes)`,
        );
      }
      return { binding: i, resource: { buffer: b.gpu, size: Math.min(b.bytes, Math.floor(maxBind / 16) * 16) } };
    });
    if (ubytes > 0) entries.push({ binding: bufs.length, resource: { buffer: this.arena, offset: 0, size: ubytes } });
    bg = this.device.createBindGroup({ layout: e.layout, entries });
    if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
    this.bindGroups.set(key, bg);
    return bg;
  }
}

/** A buffer bound writable must not also be bound read-only in the same dispatch (WebGPU usage rule). */
function checkAliasing(d: Dispatch, bufs: readonly GpuBuffer[]): void {
  for (let i = 0; i < bufs.length; i++) {
    if (d.buffers[i]!.readOnly) continue;
    for (let j = 0; j < bufs.length; j++) {
      if (j !== i && bufs[j] === bufs[i]) {
        throw new Error(
          `webgpu kernel '${d.program.key}': binding ${i} (read_write) and binding ${j} are the same buffer; bind it once`,
        );
      }
    }
  }
}
