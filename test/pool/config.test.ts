import { describe, expect, it } from 'vitest';
import { parsePoolConfig, PoolConfigError, PoolConfigSchema } from '../../src/pool/config.js';
import { PROVIDER_NAMES, PROVIDERS } from '../../src/pool/registry.js';
import { renderCommand, splitCommand } from '../../src/pool/providers/local/command-line.js';
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
      { url: 'ws://10.0.0.5:8998/api/chat', slots: 1 },
      { url: 'wss://gpu.example.com/moshi/api/chat', slots: 1 },
      { url: 'ws://a:1/api/chat?worker_auth_id=x', slots: 1 },
      { url: 'ws://a:1/api/chat', slots: 1 },
    ]);
    expect(config.maxWorkers).toBe(4);
    expect(healthUrlOf('wss://gpu.example.com/moshi/api/chat', '/api/chat', '/health')).toBe('https://gpu.example.com/moshi/health');
    expect(healthUrlOf('ws://a:1/api/chat?worker_auth_id=x', '/api/chat', '/health')).toBe('http://a:1/health');
  });

  it('gives a remote worker conversation slots with #slots=N or { url, slots }, and headers to send it', () => {
    const config = parsePoolConfig({
      provider: 'remote',
      remote: { urls: ['ws://a:1#slots=4', { url: 'https://b.example/moshi', slots: 2, headers: { authorization: 'Bearer t' } }, 'ws://c:1'] },
    });
    expect(config.provider === 'remote' && config.remote.urls).toEqual([
      { url: 'ws://a:1/api/chat', slots: 4 },
      { url: 'wss://b.example/moshi/api/chat', slots: 2, headers: { authorization: 'Bearer t' } },
      { url: 'ws://c:1/api/chat', slots: 1 },
    ]);
    // maxWorkers counts workers; their slots are the conversations.
    expect(config.maxWorkers).toBe(3);
  });

  it('takes its provider names, required blocks and checks from the provider registry', () => {
    expect(PROVIDER_NAMES).toEqual(PROVIDERS.map((p) => p.name));
    for (const provider of PROVIDERS) {
      // Each provider's minimal example is valid, and missing its block names the setting it needs.
      const config = parsePoolConfig({ provider: provider.name, [provider.name]: provider.example });
      expect(config.provider).toBe(provider.name);
      expect(problemsOf({ provider: provider.name }).join('\n')).toContain(`pool.${provider.name}.${provider.required.key}: is required when provider is "${provider.name}"`);
    }
  });

  it('parses its own output to the same settings, so it can be embedded in a larger schema', () => {
    for (const input of [
      { warm: 2, maxWorkers: 3, local: { command: "q --name 'a b' --port {port}", gpus: '0,1,2', env: { THREADS: 4 }, slots: 2 } },
      { provider: 'remote', remote: { urls: ['http://h:1'] } },
      { provider: 'remote', remote: { urls: ['http://h:1#slots=3', { url: 'ws://g:2', headers: { 'x-key': 'k' } }], chatPath: '/chat' } },
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
    [{ provider: 'cloud' }, /pool\.provider: must be "local".*"remote"/],
    [{ provider: 'remote' }, /pool\.remote\.urls: is required when provider is "remote"/],
    [{ provider: 'remote', remote: { urls: [] } }, /pool\.remote\.urls: list at least one worker/],
    [{ provider: 'remote', remote: { urls: ['ftp://x'] } }, /pool\.remote\.urls\[0\]: "ftp:\/\/x" must start with ws:\/\//],
    [{ provider: 'remote', remote: { urls: ['ws://a'] }, maxWorkers: 2 }, /pool\.maxWorkers: is 2 but remote\.urls lists 1/],
    [{ provider: 'remote', remote: { urls: ['ws://a#slots=0'] } }, /pool\.remote\.urls\[0\]: "ws:\/\/a#slots=0": #slots= takes a whole number .* e\.g\. ws:\/\/a#slots=4/],
    [{ provider: 'remote', remote: { urls: ['ws://a#top'] } }, /pool\.remote\.urls\[0\]: .*#fragment.*the only one allowed is #slots=N/],
    [{ provider: 'remote', remote: { urls: [{ url: 'ws://a', slots: 1.5 }] } }, /pool\.remote\.urls\[0\]\.slots: /],
    [{ provider: 'remote', remote: { urls: [{ url: 'ftp://a' }] } }, /pool\.remote\.urls\[0\]\.url: "ftp:\/\/a" must start with ws:\/\//],
    [{ provider: 'remote', remote: { urls: [{ url: 'ws://a', headers: { 'bad header': 'x' } }] } }, /pool\.remote\.urls\[0\]\.headers\.bad header: is not a valid HTTP header name/],
    [{ local: { command: 'q --port {port}', restart: { initialDelaySeconds: 5, maxDelaySeconds: 1 } } }, /pool\.local\.restart\.maxDelaySeconds: must not be below initialDelaySeconds/],
    [{ local: { command: 'q --port {port}', restart: { tries: 1 } } }, /pool\.local\.restart: unknown setting\(s\) "tries"; known settings are initialDelaySeconds, maxDelaySeconds, maxStartFailures, cooldownSeconds/],
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
