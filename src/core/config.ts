// The only reader of environment variables. Everything tunable from the outside is listed here,
// read once, and documented; code elsewhere imports `config` and never touches process.env.

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name];
}

function intEnv(name: string, dflt: number): number {
  const v = env(name);
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${v}"`);
  return n;
}

/** Runtime configuration, read from the environment once at startup. */
export interface Config {
  /**
   * TL_DEBUG: 0 quiet; 1 per-step summaries; 2 kernel names and timings; 3 also generated kernel
   * source.
   */
  readonly debug: number;
  /** TL_DEVICE: default device for new tensors: 'cpu', 'webgpu' or 'auto' (default 'auto'). */
  readonly device: string;
  /** TL_WEBGPU_BACKEND: Dawn backend to ask for in Node ('vulkan', 'opengles', ...); empty for Dawn's default. */
  readonly webgpuBackend: string;
  /**
   * EGL_PLATFORM: read (not set) here so that the Node WebGPU loader can tell whether it is unset; the
   * loader then sets it to 'surfaceless' before starting Dawn's GL-ES backend (headless Mesa needs it).
   */
  readonly eglPlatform: string;
}

/** The configuration in force. */
export const config: Config = {
  debug: intEnv('TL_DEBUG', 0),
  device: env('TL_DEVICE') ?? 'auto',
  webgpuBackend: env('TL_WEBGPU_BACKEND') ?? '',
  eglPlatform: env('EGL_PLATFORM') ?? '',
};
