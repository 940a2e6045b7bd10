import { describe, expect, it } from 'vitest';
import { parsePoolConfig, PoolConfigError, PoolConfigSchema } from '../../src/pool/config.js';
import { renderCommand, splitCommand } from '../../src/pool/providers/command-line.js';
import { healthUrlOf } from '../../src/pool/urls.js';

const problemsOf = (input: unknown): string[] => {
  try {
    parsePoolConfig(input);
  } catch (err) {
    if (err instanceof PoolConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the settings to be rejected');
};

describe('pool settings', () => {
  it('fills in the defaults for a local pool', () => {
    const config = parsePoolConfig({ local: { command: 'quillman worker --port {port}' } });
    expect(config).toMatchObject({ provider: 'local', warm: 1, maxWorkers: 1, idleTimeoutSeconds: 300, maxQueue: 16 });
    if (config.provider !== 'local') throw new Error('local expected');
    expect(config.local).toMatchObject({
      host: '127.0.0.1',
      basePort: 9100,
      workersPerGpu: 1,
      readyTimeoutSeconds: 600,
      resetTimeoutSeconds: 30,
      stopGraceSeconds: 10,
      healthPath: '/health',
      chatPath: '/api/chat',
      env: {},
      restart: { initialDelaySeconds: 1, maxDelaySeconds: 30, maxStartFailures: 3, cooldownSeconds: 60 },
    });
    expect(config.local.gpus).toBeUndefined();
  });

  it('runs one worker per GPU slot when GPUs are listed, given as a list or as "0,1"', () => {
    const list = parsePoolConfig({ local: { command: 'python -m moshi.server --port {port}', gpus: [0, 1], workersPerGpu: 2 } });
    expect(list.maxWorkers).toBe(4);
    const text = parsePoolConfig({ local: { command: 'x --port {port}', gpus: ' 0, GPU-5f3c ' } });
    expect(text.provider === 'local' && text.local.gpus).toEqual(['0', 'GPU-5f3c']);
    expect(text.maxWorkers).toBe(2);
  });

  it('normalises remote addresses to websocket chat URLs and counts one worker per URL', () => {
    const config = parsePoolConfig({
      provider: 'remote',
      remote: { urls: ['http://10.0.0.5:8998', 'https://gpu.example.com/moshi/', 'ws://a:1/api/chat?worker_auth_id=x', 'ws://a:1'] },
    });
    expect(config.provider === 'remote' && config.remote.urls).toEqual([
      'ws://10.0.0.5:8998/api/chat',
      'wss://gpu.example.com/moshi/api/chat',
      'ws://a:1/api/chat?worker_auth_id=x',
      'ws://a:1/api/chat',
    ]);
    expect(config.maxWorkers).toBe(4);
    expect(healthUrlOf('wss://gpu.example.com/moshi/api/chat', '/api/chat', '/health')).toBe('https://gpu.example.com/moshi/health');
    expect(healthUrlOf('ws://a:1/api/chat?worker_auth_id=x', '/api/chat', '/health')).toBe('http://a:1/health');
  });

  it('parses its own output to the same settings, so it can be embedded in a larger schema', () => {
    for (const input of [
      { warm: 2, maxWorkers: 3, local: { command: "q --name 'a b' --port {port}", gpus: '0,1,2', env: { THREADS: 4 } } },
      { provider: 'remote', remote: { urls: ['http://h:1'] } },
    ]) {
      const once = PoolConfigSchema.parse(input);
      expect(PoolConfigSchema.parse(once)).toEqual(once);
    }
  });

  it.each([
    [{}, /pool\.local\.command: is required when provider is "local".*--port \{port\}/],
    [{ local: { command: 'quillman worker' } }, /pool\.local\.command: must contain \{port\}.*"quillman worker --port \{port\}"/],
    [{ local: { command: 'q --port {prot}' } }, /unknown placeholder\(s\) \{prot\}/],
    [{ local: { command: 'q "--port {port}' } }, /unmatched " quote/],
    [{ local: { command: 'q --port {port}', gpus: [0, 0] } }, /pool\.local\.gpus: lists the same GPU twice/],
    [{ local: { command: 'q --port {port}', gpus: [0] }, maxWorkers: 2 }, /pool\.maxWorkers: is 2 but 1 GPU\(s\) × workersPerGpu 1 give room for 1/],
    [{ local: { command: 'q --port {port}' }, warm: 3, maxWorkers: 2 }, /pool\.warm: is 3 but at most 2/],
    [{ local: { command: 'q --port {port}', readyTimeoutSeconds: 600_000 } }, /readyTimeoutSeconds: is in seconds and at most 86400/],
    [{ local: { command: 'q --port {port}', env: { 'BAD-NAME': 'x' } } }, /pool\.local\.env/],
    [{ maxworkers: 3, local: { command: 'q --port {port}' } }, /pool: unknown setting\(s\) "maxworkers"; known settings are .*maxWorkers/],
    [{ provider: 'cloud' }, /pool\.provider: must be "local".*or "remote"/],
    [{ provider: 'remote' }, /pool\.remote\.urls: is required when provider is "remote"/],
    [{ provider: 'remote', remote: { urls: [] } }, /pool\.remote\.urls: list at least one worker/],
    [{ provider: 'remote', remote: { urls: ['ftp://x'] } }, /pool\.remote\.urls\[0\]: "ftp:\/\/x" must start with ws:\/\//],
    [{ provider: 'remote', remote: { urls: ['ws://a'] }, maxWorkers: 2 }, /pool\.maxWorkers: is 2 but remote\.urls lists 1/],
  ])('rejects %j with a message naming the setting', (input, message) => {
    expect(problemsOf(input).join('\n')).toMatch(message);
  });

  it('reports every problem at once and says what to do next', () => {
    try {
      parsePoolConfig({ warm: -1, maxQueue: 'many', local: { command: 'q --port {port}' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PoolConfigError);
      expect((err as PoolConfigError).problems).toHaveLength(2);
      expect((err as Error).message).toMatch(/^Invalid pool settings:\n {2}- pool\.warm: .*\n {2}- pool\.maxQueue: .*\nFix them/);
    }
  });
});

describe('command templates', () => {
  it('splits like a shell: quotes, escapes, no expansion', () => {
    expect(splitCommand(`python -m moshi.server --port {port}`)).toEqual(['python', '-m', 'moshi.server', '--port', '{port}']);
    expect(splitCommand(`'/opt/my models/run' --name "a \\"b\\" $HOME" it\\'s ''`)).toEqual(['/opt/my models/run', '--name', 'a "b" $HOME', "it's", '']);
    expect(splitCommand(`node 'it'\\''s.js'`)).toEqual(['node', "it's.js"]);
    expect(() => splitCommand('  ')).toThrow(/empty/);
  });

  it('fills placeholders inside arguments, never adding arguments', () => {
    expect(renderCommand(splitCommand(`w --listen={host}:{port} '--label=port {port}'`), { port: '9101', host: '127.0.0.1' })).toEqual([
      'w',
      '--listen=127.0.0.1:9101',
      '--label=port 9101',
    ]);
  });
});
