/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): object ids in
 * Modal's shapes. The SDK inspects them: a sandbox id that is not `sb-` plus
 * 22 base-62 characters switches it to the V2 sandbox API, which the stand-in
 * does not serve.
 */
import { randomInt } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export type IdPrefix = 'ap' | 'en' | 'im' | 'st' | 'vo' | 'sb' | 'ta';

export function newId(prefix: IdPrefix): string {
  let suffix = '';
  for (let i = 0; i < 22; i++) suffix += BASE62[randomInt(BASE62.length)];
  return `${prefix}-${suffix}`;
}

