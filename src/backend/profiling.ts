// Per-kernel profile bookkeeping shared by the backends: run counts, host time and (where the device
// has timestamps) device time per kernel name, turned into the rows of a KernelProfile.
import type { KernelTiming } from './backend.js';

interface Entry {
  count: number;
  hostMs: number;
  deviceMs: number;
}

/** Aggregates kernel runs by name. Only touched while profiling is on. */
export class KernelTally {
  private readonly entries = new Map<string, Entry>();

  private entry(name: string): Entry {
    let e = this.entries.get(name);
    if (!e) {
      e = { count: 0, hostMs: 0, deviceMs: 0 };
      this.entries.set(name, e);
    }
    return e;
  }

  /** Counts one run of kernel `name` that took `hostMs` on the host. */
  add(name: string, hostMs: number): void {
    const e = this.entry(name);
    e.count++;
    e.hostMs += hostMs;
  }

  /** Adds host time to `name` without counting a run (time split over an op's several dispatches). */
  addHost(name: string, ms: number): void {
    this.entry(name).hostMs += ms;
  }

  /** Adds device time (from GPU timestamps) to `name` without counting a run. */
  addDevice(name: string, ms: number): void {
    this.entry(name).deviceMs += ms;
  }

  /** Forgets everything collected. */
  clear(): void {
    this.entries.clear();
  }

  /** The rows collected; `deviceMs` is null unless `withDevice` (the times came from GPU timestamps). */
  rows(withDevice: boolean): KernelTiming[] {
    return [...this.entries].map(([name, e]) => ({
      name,
      count: e.count,
      hostMs: e.hostMs,
      deviceMs: withDevice ? e.deviceMs : null,
    }));
  }
}
