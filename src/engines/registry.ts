/**
 * Engines by name. Heavy engines are imported lazily so a loopback worker
 * never loads ONNX or llama.cpp.
 */
import type { Engine } from './engine.js';
import { createLoopbackEngine, type LoopbackOptions } from './loopback.js';

export const ENGINE_NAMES = ['cascade', 'loopback'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export interface EngineSettings {
  name: EngineName;
  loopback?: Partial<LoopbackOptions>;
  /** Raw cascade settings; validated by the cascade engine's own schema. */
  cascade?: Record<string, unknown>;
}

export async function createEngine(settings: EngineSettings): Promise<Engine> {
  switch (settings.name) {
    case 'loopback':
      return createLoopbackEngine(settings.loopback);
    case 'cascade': {
      const { createCascadeEngine } = await import('./cascade/index.js');
      return createCascadeEngine(settings.cascade ?? {});
    }
  }
}
