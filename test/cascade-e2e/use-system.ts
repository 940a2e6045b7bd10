/**
 * The vitest side of harness.ts, apart from it because the cascade benchmark
 * imports the harness and must run without vitest.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { eventually } from '../helpers/gateway.js';
import { newMarker, processesWithMarker } from '../helpers/processes.js';
import { startCascadeSystem, untilReady, type CascadeSystem, type CascadeSystemOptions } from './harness.js';

/**
 * One cascade system for the whole test file, ready before its first test;
 * after the last one it is closed, and no process it started may be left.
 */
export function useCascadeSystem(options: Omit<CascadeSystemOptions, 'marker'>): () => CascadeSystem {
  const marker = newMarker();
  let system: CascadeSystem | undefined;
  beforeAll(async () => {
    system = await startCascadeSystem({ ...options, marker });
    await untilReady(system);
  });
  afterAll(async () => {
    await system?.close();
    // Helpers such as esbuild exit a moment after their parent: give them that moment, then insist.
    await eventually(() => processesWithMarker(marker).length === 0, 5000, 'no process left behind').catch(() => undefined);
    expect(processesWithMarker(marker)).toEqual([]);
  });
  return () => {
    if (!system) throw new Error('the cascade system is only there inside tests (it failed to start, or this runs outside one)');
    return system;
  };
}
