import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, SETTINGS, SettingsError } from '../../src/config/settings.js';
import { PROVIDERS } from '../../src/pool/registry.js';
import { withProvidersTable, withSettingsTable } from '../../src/config/settings-table.js';
import { REPO } from '../helpers/gateway.js';
import { tempDir } from '../helpers/speech.js';

const command = { pool: { local: { command: 'worker --port {port}' } } };

describe('settings', () => {
  it('layers defaults, file, environment and flags, in that order', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir.path, 'q.yaml');
      writeFileSync(file, 'gateway:\n  port: 7000\n  maxConversationSeconds: 120\npool:\n  warm: 0\n  local:\n    command: "worker --port {port}"\n');
      const s = loadSettings({ configFile: file, env: { QUILLMAN_PORT: '7100', QUILLMAN_MAX_QUEUE: '3' }, flags: { port: '7200' } });
      expect(s.gateway.port).toBe(7200); // flag beats environment beats file
      expect(s.pool.maxQueue).toBe(3); // environment
      expect(s.gateway.maxConversationSeconds).toBe(120); // file
      expect(s.pool.idleTimeoutSeconds).toBe(300); // default
      expect(s.gateway.warnBeforeEndSeconds).toEqual([60, 10]);
    } finally {
      await dir.cleanup();
    }
  });

  it('names the setting, its flag and variable when a value is invalid', () => {
    const load = () => loadSettings({ env: { QUILLMAN_MAX_QUEUE: 'lots', QUILLMAN_WORKER_COMMAND: command.pool.local.command }, flags: { engine: 'moshi-9000' } });
    expect(load).toThrow(SettingsError);
    expect(load).toThrow(/pool\.maxQueue \(--max-queue \/ QUILLMAN_MAX_QUEUE\)/);
    expect(load).toThrow(/engine\.name \(--engine \/ QUILLMAN_ENGINE\)/);
  });

  it('rejects a config file that is not valid YAML, saying which file', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir.path, 'bad.yaml');
      writeFileSync(file, 'gateway: [unclosed');
      expect(() => loadSettings({ configFile: file, env: {} })).toThrow(/bad\.yaml is not valid YAML/);
    } finally {
      await dir.cleanup();
    }
  });

  it('the README shows the current settings table (run `npm run docs` after changing settings)', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    expect(readme).toBe(withSettingsTable(readme));
  });

  it('docs/pool.md shows the current providers table (run `npm run docs` after changing a provider)', () => {
    const doc = readFileSync(join(REPO, 'docs/pool.md'), 'utf8');
    expect(doc).toBe(withProvidersTable(doc));
    for (const provider of PROVIDERS) expect(doc).toContain(`| \`${provider.name}\` |`);
  });

  it("takes --provider's choices and each provider's flags from the provider registry", () => {
    const providerFlag = SETTINGS.find((s) => s.path === 'pool.provider')!;
    expect(providerFlag.choices).toEqual(PROVIDERS.map((p) => p.name));
    for (const provider of PROVIDERS) {
      for (const flag of provider.flags) {
        expect(SETTINGS).toContainEqual(expect.objectContaining({ path: `pool.${provider.name}.${flag.key}`, flag: flag.flag, env: flag.env }));
      }
    }
    // A provider flag goes through the provider's own schema: #slots= on a worker URL from the environment.
    const s = loadSettings({ env: { QUILLMAN_PROVIDER: 'remote', QUILLMAN_WORKER_URLS: 'ws://10.0.0.5:8998#slots=4, http://10.0.0.6:8998' } });
    expect(s.pool.provider === 'remote' && s.pool.remote.urls).toEqual([
      { url: 'ws://10.0.0.5:8998/api/chat', slots: 4 },
      { url: 'ws://10.0.0.6:8998/api/chat', slots: 1 },
    ]);
    expect(() => loadSettings({ env: { QUILLMAN_PROVIDER: 'cloud' } })).toThrow(/pool\.provider \(--provider \/ QUILLMAN_PROVIDER\): must be "local" \(start workers here\), "remote"/);
  });
});
