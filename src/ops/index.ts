// The ops layer: op codes, attributes, dtype and shape rules, and what each op saves for backward.
export * from './opcodes.js';
export * from './dtypes.js';
export * from './shapes.js';
export * from './saves.js';
