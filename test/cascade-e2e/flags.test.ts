/**
 * The cascade engine's flags and variables: one table serves `quillman
 * serve` and `quillman worker`, the gateway hands its settings down to the
 * workers it starts, a worker's own flags win, bad values stop the process
 * naming the flag, and every flag an error message tells users to use exists.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerChatCommand } from '../../src/cli/chat-command.js';
import { registerModelsCommand } from '../../src/cli/models-command.js';
import { registerServeCommand, resolveSettings } from '../../src/cli/serve-command.js';
import { registerWorkerCommand } from '../../src/cli/worker-command.js';
import { CASCADE_SETTINGS, cascadeSettingsFor, loadSettings, SettingsError } from '../../src/config/settings.js';
import { CLI_ARGS, REPO } from '../helpers/gateway.js';

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [...CLI_ARGS, ...args], { cwd: REPO, env: { ...process.env, ...env }, timeout: 20_000 }, (err, _stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

describe('cascade flags', () => {
  it('serve: flags beat variables, and the workers it starts inherit the result', () => {
    const settings = resolveSettings({
      lmUrl: 'http://127.0.0.1:9/v1',
      gguf: '/models/my.gguf',
      stt: 'pocketsphinx',
      llamaThreads: '1',
      persona: 'You are terse.',
    });
    expect(settings.engine.cascade).toEqual({
      openai: { url: 'http://127.0.0.1:9/v1' },
      llama: { model: '/models/my.gguf', threads: 1 },
      stt: 'pocketsphinx',
      persona: 'You are terse.',
    });
    if (settings.pool.provider !== 'local') throw new Error('expected the local provider');
    const handedDown = JSON.parse(settings.pool.local.env.QUILLMAN_ENGINE_SETTINGS);
    expect(handedDown.cascade).toEqual(settings.engine.cascade);

    const fromEnv = loadSettings({ env: { QUILLMAN_LM_URL: 'http://a.example/v1', QUILLMAN_TTS: 'espeak-ng', QUILLMAN_WORKER_COMMAND: 'w {port}' }, flags: { lmUrl: 'http://b.example/v1' } });
    expect(fromEnv.engine.cascade).toEqual({ openai: { url: 'http://b.example/v1' }, tts: 'espeak-ng' });
  });

  it('serve: a bad value names its flag and variable', () => {
    const load = () => loadSettings({ env: { QUILLMAN_WORKER_COMMAND: 'w {port}', QUILLMAN_STT: 'whisper' }, flags: { lmUrl: 'not a url', llamaThreads: 'many' } });
    expect(load).toThrow(SettingsError);
    expect(load).toThrow(/engine\.cascade\.stt \(--stt \/ QUILLMAN_STT\)/);
    expect(load).toThrow(/engine\.cascade\.openai\.url \(--lm-url \/ QUILLMAN_LM_URL\)/);
    expect(load).toThrow(/engine\.cascade\.llama\.threads \(--llama-threads \/ QUILLMAN_LLAMA_THREADS\)/);
  });

  it('worker: its variables, then what the gateway handed down, then its own flags', () => {
    const merged = cascadeSettingsFor({
      env: { QUILLMAN_LM_URL: 'http://env.example/v1', QUILLMAN_LM_MODEL: 'env-model', QUILLMAN_PERSONA: 'from env' },
      inherited: { openai: { url: 'http://gateway.example/v1' }, hangMs: 700, persona: 'from gateway' },
      flags: { persona: 'from flag', modelsDir: 'models' },
    });
    expect(merged).toEqual({
      openai: { url: 'http://gateway.example/v1', model: 'env-model' },
      hangMs: 700,
      persona: 'from flag',
      cacheDir: resolve('models'),
    });
  });

  it('worker: a bad value stops the process before it loads anything, naming the flag', async () => {
    const r = await cli(['worker', '--port', '0', '--tts', 'say', '--lm-url', 'nope'], { QUILLMAN_ENGINE_SETTINGS: '' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('engine.cascade.tts (--tts / QUILLMAN_TTS)');
    expect(r.stderr).toContain('engine.cascade.openai.url (--lm-url / QUILLMAN_LM_URL)');
    const broken = await cli(['worker', '--port', '0'], { QUILLMAN_ENGINE_SETTINGS: '{oops' });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('QUILLMAN_ENGINE_SETTINGS is not a JSON object');
  });

  it('every --flag that an error message or hint of the engine or the models names exists', () => {
    const program = new Command();
    registerServeCommand(program);
    registerWorkerCommand(program);
    registerChatCommand(program);
    registerModelsCommand(program);
    const all = (cmd: Command): Command[] => [cmd, ...cmd.commands.flatMap(all)];
    const known = new Set(all(program).flatMap((c) => c.options.map((o) => o.long)));
    for (const spec of CASCADE_SETTINGS) expect(known).toContain(spec.flag.split(' ')[0]);

    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
      });
    const named = new Map<string, string>();
    for (const file of [...files(join(REPO, 'src/engines/cascade')), ...files(join(REPO, 'src/models'))]) {
      // Flags inside sentences in string literals (not comments, not the arguments given to programs, such as flite's --help).
      for (const literal of (readFileSync(file, 'utf8').match(/(['`])(?:(?!\1)[^\\\n]|\\.)*\1/g) ?? []).filter((l) => / /.test(l))) {
        for (const flag of literal.match(/--[a-z][a-z-]+/g) ?? []) named.set(flag, file);
      }
    }
    expect(named.size).toBeGreaterThan(0);
    for (const [flag, file] of named) expect(known.has(flag), `${flag} in ${file}`).toBe(true);
  });
});
