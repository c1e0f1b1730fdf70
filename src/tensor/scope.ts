// Memory scopes: `tidy(fn)` disposes every tensor created inside `fn` except what `fn` returns and
// what was passed to `keep()`. Scopes nest; a returned tensor moves to the enclosing scope.

/** What scopes track: anything with a `dispose()` and a `disposed` flag (tensors). */
export interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

const stack: Set<Disposable>[] = [];

/** Registers a newly created tensor with the innermost scope (no-op outside `tidy`). */
export function track(t: Disposable): void {
  stack[stack.length - 1]?.add(t);
}

/** Removes a tensor from every open scope so that it outlives them; returns it. */
export function keep<T extends Disposable>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(v: unknown, out: Set<Disposable>, seen: Set<unknown>): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (typeof (v as Disposable).dispose === 'function' && 'disposed' in v) {
    out.add(v as Disposable);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, seen);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, seen);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, seen);
}

/**
 * Runs `fn` and disposes every tensor it created, except those reachable from its result (through
 * arrays, Maps and plain objects) and those passed to `keep()`. Async functions are not allowed:
 * tensors created after an `await` would escape the scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error('tidy: fn must be synchronous (it returned a Promise); await outside tidy instead');
  }
  const survivors = new Set<Disposable>();
  collect(result, survivors, new Set());
  for (const t of scope) {
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
  return result;
}
