export * from './cache.js';
export * from './download.js';
export * from './registry.js';
export * from './store.js';
export * from './commands.js';
export * from './mirror.js';
export { stderrProgressBar } from './progress-bar.js';
