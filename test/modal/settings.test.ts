/**
 * The modal provider's settings and its cost arithmetic: what a user types
 * (flags, config) becomes what the provider sends, and a clock it controls
 * shows the meter counting each state at the right price.
 */
import { describe, expect, it } from 'vitest';
import { parsePoolConfig, PoolConfigError } from '../../src/pool/index.js';
import { Ledger } from '../../src/pool/providers/modal/ledger.js';
import { imageSpec, sandboxEnv, serverCommand } from '../../src/pool/providers/modal/sandbox-spec.js';
import { pricePerHour } from '../../src/pool/providers/modal/settings.js';
import { MOSHI_VERSION } from '../../src/kyutai/python-env.js';

const problems = (input: unknown) => {
  try {
    parsePoolConfig(input);
    return '';
  } catch (err) {
    if (err instanceof PoolConfigError) return err.problems.join('\n');
    throw err;
  }
};

describe('modal settings', () => {
  it('takes GPU types as a list or a comma-separated string, in order, any case', () => {
    const parsed = parsePoolConfig({ provider: 'modal', warm: 0, modal: { gpu: 'l40s, A100-80GB:2,h100!' } });
    expect(parsed.provider === 'modal' && parsed.modal.gpu).toEqual(['L40S', 'A100-80GB:2', 'H100!']);
    expect(parsed.maxWorkers).toBe(1);
    // Parsing is idempotent.
    expect(parsePoolConfig(parsed)).toEqual(parsed);
  });

  it('names the setting and the fix for what Modal would refuse', () => {
    expect(problems({ provider: 'modal' })).toMatch(/pool\.modal\.app: is required when provider is "modal"/);
    expect(problems({ provider: 'modal', modal: { gpu: 'RTX4090' } })).toMatch(/pool\.modal\.gpu\[0\]: must be a Modal GPU type \(T4, L4, .*L40S/);
    expect(problems({ provider: 'modal', modal: { gpu: [] } })).toMatch(/pool\.modal\.gpu: names no GPU type/);
    expect(problems({ provider: 'modal', modal: { slots: 2 } })).toMatch(/pool\.modal\.slots: must be 1/);
    expect(problems({ provider: 'modal', modal: { sandboxTimeoutSeconds: 90_000 } })).toMatch(/pool\.modal\.sandboxTimeoutSeconds: is in seconds and at most 86400/);
    expect(problems({ provider: 'modal', modal: { app: 'my app' } })).toMatch(/pool\.modal\.app: must be a Modal app name/);
    expect(problems({ provider: 'modal', modal: { token: 'x' } })).toMatch(/pool\.modal: unknown setting\(s\) "token"/);
    expect(problems({ provider: 'modal', warm: 2, modal: {} })).toMatch(/pool\.warm: is 2 but at most 1/);
  });

  it('runs Kyutai\'s server on all interfaces from the pinned moshi, with the weights cache on the volume', () => {
    const parsed = parsePoolConfig({ provider: 'modal', modal: { hfRepo: 'kyutai/moshiko-pytorch-q8', serverArgs: '--half', env: { HF_TOKEN: 'x' } } });
    if (parsed.provider !== 'modal') throw new Error('not modal');
    expect(serverCommand(parsed.modal)).toEqual(['python', '-m', 'moshi.server', '--host', '0.0.0.0', '--port', '8998', '--static', 'none', '--hf-repo', 'kyutai/moshiko-pytorch-q8', '--half']);
    expect(imageSpec(parsed.modal)).toEqual({ tag: 'python:3.11-slim', commands: [`RUN pip install --no-cache-dir moshi==${MOSHI_VERSION}`] });
    expect(imageSpec({ ...parsed.modal, image: 'me/moshi:gpu' })).toEqual({ tag: 'me/moshi:gpu', commands: [] });
    expect(sandboxEnv(parsed.modal)).toMatchObject({ HF_HOME: '/cache/huggingface', HF_TOKEN: 'x' });
  });

  it('prices a GPU type per hour, several GPUs as several, with the user\'s table first', () => {
    expect(pricePerHour('L40S', {})).toBe(1.95);
    expect(pricePerHour('A100-80GB:2', {})).toBe(5);
    expect(pricePerHour('L40S', { L40S: 1.5 })).toBe(1.5);
    expect(pricePerHour('L40S:4', { 'L40S:4': 6 })).toBe(6);
  });
});

describe('the sandbox meter', () => {
  it('counts seconds per state and GPU, prices what Modal bills, and not the wait in its queue', () => {
    let now = 0;
    const ledger = new Ledger((gpu) => (gpu === 'L40S' ? 3600 : undefined), () => now);
    const a = ledger.open('L40S', 'queued');
    now += 5000;
    a.set('starting');
    now += 10_000;
    a.set('idle');
    now += 20_000;
    a.set('busy');
    const b = ledger.open('T4', 'starting');
    now += 30_000;
    a.set('stopping');
    now += 2000;
    a.close();
    now += 1000;
    const seconds = Object.fromEntries(ledger.seconds());
    expect(seconds).toEqual({ 'queued|L40S': 5, 'starting|L40S': 10, 'idle|L40S': 20, 'busy|L40S': 30, 'stopping|L40S': 2, 'starting|T4': 33 });
    // $1 a second for the L40S's 62 billed seconds; the T4 has no price here.
    expect(Object.fromEntries(ledger.cost())).toEqual({ L40S: 62 });
    expect(Object.fromEntries(ledger.live())).toEqual({ 'starting|T4': 1 });
    b.close();
    now += 60_000;
    expect(ledger.seconds().get('starting|T4')).toBe(33);
  });
});
