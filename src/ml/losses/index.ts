export * from './triarchy.js';
