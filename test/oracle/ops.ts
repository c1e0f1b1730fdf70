// The float64 reference oracle in one import: every kernel op and composite, with the n-d array
// and dtype-rounding helpers. Tests import from here; nothing here imports library code.
export * from './ndarray.js';
export * from './dtypes.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './linalg.js';
export * from './indexing.js';
export * from './nn.js';
