export * from './adam.js';
export * from './checkpoint.js';
export * from './trainer.js';
export * from './memory.js';
