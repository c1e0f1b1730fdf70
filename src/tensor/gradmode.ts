// Whether ops record an autograd graph. `noGrad(fn)` turns recording off for a scope (optimizer
// steps, evaluation); backward itself runs with recording off.

let enabled = true;

/** True when ops record the autograd graph. */
export function isGradEnabled(): boolean {
  return enabled;
}

/** Runs `fn` with graph recording set to `on`, restoring the previous mode afterwards (also on throw). */
export function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** Runs `fn` without recording gradients (like `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs `fn` with gradient recording on, even inside `noGrad` (like `torch.enable_grad()`). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
