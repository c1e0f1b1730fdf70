// Crash-safe training checkpoints: one folder per checkpoint, written as `DIR/tmp-<step>/` and renamed to
// `DIR/step-<N>/` once complete, with `DIR/latest` (a small JSON pointer) updated atomically afterwards.
// Each folder holds model.safetensors, optimizer.safetensors and meta.json; meta.json records an FNV-1a
// checksum and size of every other file, so a truncated or corrupt checkpoint is refused naming the file,
// and loading falls back to the previous complete one (saying so) instead of using a broken one.
import { mkdir, readFile, readdir, rename, rm, open } from 'node:fs/promises';
import { join } from 'node:path';
import { TensorloomError } from '../core/errors.js';
import type { DeviceLike, Tensor } from '../tensor/index.js';
import { loadSafetensors, serializeSafetensors } from './safetensors.js';
import { writeFileAtomic } from './safetensors-node.js';

/** The format version written into meta.json. */
export const CHECKPOINT_FORMAT = 1;

/** One parameter's optimizer state (structurally the optimizer's `ParamState`). */
export interface CheckpointParamState {
  step: number;
  tensors: Record<string, Tensor>;
}

/** An optimizer snapshot (structurally `OptimizerStateDict`: io does not import optim). */
export interface CheckpointOptimizerState {
  state: Record<number, CheckpointParamState>;
  paramGroups: unknown[];
}

/** What a checkpoint holds. `extra` is any JSON (sampler and RNG states, the run's config, ...). */
export interface CheckpointData {
  /** Optimizer steps completed: a resumed run starts at this step. */
  step: number;
  model: ReadonlyMap<string, Tensor>;
  optimizer: CheckpointOptimizerState;
  extra: Record<string, unknown>;
}

/** A loaded checkpoint (its tensors are fresh; the caller disposes them after loading). */
export interface LoadedCheckpoint extends CheckpointData {
  model: Map<string, Tensor>;
  /** The folder it was read from. */
  path: string;
}

interface FileRecord {
  bytes: number;
  fnv1a: string;
}

interface Meta {
  format: number;
  step: number;
  version: string;
  optimizer: { paramGroups: unknown[]; steps: Record<string, number> };
  extra: Record<string, unknown>;
  files: Record<string, FileRecord>;
}

const MODEL_FILE = 'model.safetensors';
const OPTIM_FILE = 'optimizer.safetensors';
const META_FILE = 'meta.json';
const LATEST_FILE = 'latest';

/** 32-bit FNV-1a of `bytes`, as 8 hex digits. */
export function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

async function writeSynced(path: string, bytes: Uint8Array | string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Step numbers of the complete-looking `step-<N>` folders in `dir`, newest first. */
async function stepFolders(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
}

/**
 * Writes checkpoint `data` into `dir` (created if needed) as `step-<N>/`, points `latest` at it and
 * keeps only the newest `keep` checkpoints (default 2), dropping interrupted `tmp-*` saves. Returns the checkpoint's folder.
 */
export async function saveCheckpoint(
  dir: string,
  data: CheckpointData,
  opts: { keep?: number; version?: string } = {},
): Promise<string> {
  const keep = Math.max(1, opts.keep ?? 2);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `tmp-${data.step}`);
  const final = join(dir, `step-${data.step}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);

  const optTensors = new Map<string, Tensor>();
  const steps: Record<string, number> = {};
  for (const [idx, st] of Object.entries(data.optimizer.state)) {
    steps[idx] = st.step;
    for (const [name, t] of Object.entries(st.tensors)) optTensors.set(`state.${idx}.${name}`, t);
  }
  const files: Record<string, FileRecord> = {};
  const put = async (name: string, bytes: Uint8Array): Promise<void> => {
    await writeSynced(join(tmp, name), bytes);
    files[name] = { bytes: bytes.byteLength, fnv1a: fnv1a(bytes) };
  };
  await put(MODEL_FILE, await serializeSafetensors(data.model));
  await put(OPTIM_FILE, await serializeSafetensors(optTensors));
  const meta: Meta = {
    format: CHECKPOINT_FORMAT,
    step: data.step,
    version: opts.version ?? 'unknown',
    optimizer: { paramGroups: data.optimizer.paramGroups, steps },
    extra: data.extra,
    files,
  };
  await writeSynced(join(tmp, META_FILE), JSON.stringify(meta, null, 2) + '\n');

  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeFileAtomic(join(dir, LATEST_FILE), JSON.stringify({ step: data.step, path: `step-${data.step}` }) + '\n');
  for (const old of (await stepFolders(dir)).slice(keep)) {
    await rm(join(dir, `step-${old}`), { recursive: true, force: true });
  }
  // leftovers of saves that a crash interrupted are never complete: drop them
  for (const name of await readdir(dir)) {
    if (/^tmp-\d+$/.test(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
  return final;
}

/** Reads and verifies one checkpoint folder; throws a TensorloomError naming the bad file. */
export async function readCheckpoint(path: string, opts: { device?: DeviceLike } = {}): Promise<LoadedCheckpoint> {
  const metaPath = join(path, META_FILE);
  let meta: Meta;
  try {
    meta = JSON.parse(await readFile(metaPath, 'utf8')) as Meta;
  } catch (e) {
    throw new TensorloomError(`checkpoint ${metaPath} is missing or unreadable: ${(e as Error).message}`);
  }
  if (meta.format !== CHECKPOINT_FORMAT || typeof meta.files !== 'object' || meta.files === null) {
    throw new TensorloomError(`checkpoint ${metaPath}: not a tensorloom checkpoint (format ${String(meta.format)})`);
  }
  const bytesOf = async (name: string): Promise<Uint8Array> => {
    const file = join(path, name);
    const rec = meta.files[name];
    if (!rec) throw new TensorloomError(`checkpoint ${metaPath} does not list ${name}`);
    const bytes = await readFile(file).catch((e: unknown) => {
      throw new TensorloomError(`checkpoint file ${file} is missing or unreadable: ${(e as Error).message}`);
    });
    if (bytes.byteLength !== rec.bytes) {
      throw new TensorloomError(
        `checkpoint file ${file} is ${bytes.byteLength} bytes, ${rec.bytes} expected (truncated or partial)`,
      );
    }
    if (fnv1a(bytes) !== rec.fnv1a) {
      throw new TensorloomError(`checkpoint file ${file} is corrupt (checksum ${fnv1a(bytes)}, ${rec.fnv1a} expected)`);
    }
    return new Uint8Array(bytes); // an unpooled copy: Node's Buffer may be a view into a shared pool
  };
  const modelBytes = await bytesOf(MODEL_FILE);
  const optBytes = await bytesOf(OPTIM_FILE);
  const model = (await loadSafetensors(modelBytes, opts)).tensors;
  const optTensors = (await loadSafetensors(optBytes, opts)).tensors;
  const state: Record<number, CheckpointParamState> = {};
  for (const [idx, step] of Object.entries(meta.optimizer.steps)) state[Number(idx)] = { step, tensors: {} };
  for (const [key, t] of optTensors) {
    const m = /^state\.(\d+)\.(.+)$/.exec(key);
    const entry = m ? state[Number(m[1])] : undefined;
    if (!m || !entry) throw new TensorloomError(`checkpoint file ${join(path, OPTIM_FILE)}: unexpected tensor ${key}`);
    entry.tensors[m[2]!] = t;
  }
  return {
    path,
    step: meta.step,
    model,
    optimizer: { state, paramGroups: meta.optimizer.paramGroups },
    extra: meta.extra,
  };
}

/**
 * Loads the newest usable checkpoint in `dir`: the one `latest` points at, else (when it is missing,
 * truncated or corrupt: refused and reported through `log`) the next newest complete one. Returns
 * null when `dir` holds no checkpoint at all; throws when every checkpoint found is broken.
 */
export async function loadLatestCheckpoint(
  dir: string,
  opts: { device?: DeviceLike; log?: (s: string) => void } = {},
): Promise<LoadedCheckpoint | null> {
  const log = opts.log ?? (() => {});
  let pointed: number | undefined;
  try {
    const p = JSON.parse(await readFile(join(dir, LATEST_FILE), 'utf8')) as { step?: unknown };
    if (typeof p.step === 'number') pointed = p.step;
  } catch {
    // no pointer (or a broken one): fall back to the folders themselves
  }
  const found = await stepFolders(dir);
  const order = pointed !== undefined ? [pointed, ...found.filter((s) => s !== pointed)] : found;
  if (order.length === 0) return null;
  const refused: string[] = [];
  for (const step of order) {
    try {
      const ck = await readCheckpoint(join(dir, `step-${step}`), opts);
      if (refused.length) log(`using the previous complete checkpoint ${ck.path}`);
      return ck;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      refused.push(msg);
      log(`refusing checkpoint step-${step}: ${msg}`);
    }
  }
  throw new TensorloomError(`no usable checkpoint in ${dir}:\n  ${refused.join('\n  ')}`);
}
