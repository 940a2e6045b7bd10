/**
 * Warm-up runs once per engine even when several worker slots share it; each
 * slot still hears the progress, so every /health shows it.
 */
import type { Engine, ProgressReport } from '../engines/engine.js';

interface Warming {
  done: Promise<void>;
  listeners: Set<(p: ProgressReport) => void>;
}

const warming = new WeakMap<Engine, Warming>();

export function warmUpOnce(engine: Engine, onProgress: (p: ProgressReport) => void): Promise<void> {
  let entry = warming.get(engine);
  if (!entry) {
    const listeners = new Set<(p: ProgressReport) => void>();
    const done = engine.warmUp ? engine.warmUp((p) => listeners.forEach((l) => l(p))) : Promise.resolve();
    entry = { done, listeners };
    warming.set(engine, entry);
  }
  entry.listeners.add(onProgress);
  const listeners = entry.listeners;
  return entry.done.finally(() => listeners.delete(onProgress));
}
