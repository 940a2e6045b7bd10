import { AdaptivePolicy } from './adaptive-policy.js';
import { KyutaiPolicy } from './kyutai-policy.js';
import type { PlayoutPolicy } from './playout-buffer.js';

export const POLICY_NAMES = ['adaptive', 'kyutai'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export function createPolicy(name: PolicyName, sampleRate: number): PlayoutPolicy {
  return name === 'kyutai' ? new KyutaiPolicy(sampleRate) : new AdaptivePolicy({ sampleRate });
}
