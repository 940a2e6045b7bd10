/**
 * Vitest glue: one cluster per test file, started before its tests and
 * stopped after them, with a check that every process it started is gone.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { eventually } from '../../helpers/gateway.js';
import { processesWithMarker } from '../../helpers/processes.js';
import { startCluster, type ClusterOptions, type TestCluster } from './cluster.js';

export function useCluster(options: ClusterOptions = {}): () => TestCluster {
  let cluster: TestCluster | undefined;
  let marker: string | undefined;
  // Long enough for scripts/kube-binaries.sh to build on a machine that has never run it (.ci/run
  // builds first); a cached start takes seconds.
  beforeAll(async () => {
    cluster = await startCluster(options);
    marker = cluster.marker;
  }, 60 * 60_000);
  afterAll(async () => {
    await cluster?.stop();
    if (marker) {
      const left = await eventually(() => processesWithMarker(marker!).length === 0 || undefined, 20_000, 'the cluster\'s processes to exit').catch(() => false);
      expect(left ? [] : processesWithMarker(marker), 'processes left running').toEqual([]);
    }
  }, 120_000);
  return () => {
    if (!cluster) throw new Error('the cluster did not start');
    return cluster;
  };
}

