import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, SettingsError } from '../../src/config/settings.js';
import { withSettingsTable } from '../../src/config/settings-table.js';
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
    const load = () => loadSettings({ env: { QUILLMAN_MAX_QUEUE: 'lots', QUILLMAN_WORKER_COMMAND: command.pool.local.command }, flags: { engine: 'moshi' } });
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
});
