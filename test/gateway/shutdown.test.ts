/**
 * Stopping `npm start` stops everything it started, whatever signal a
 * supervisor sends, with the real process tree:
 *
 *   npm → node scripts/bootstrap.mjs → quillman serve → workers (+ their watchdog)
 *
 * A live conversation is drained: warned with `ending_soon`, closed cleanly
 * (1001) after the grace period, and every process exits.
 *
 * Stand-in: the project runs in a scratch folder whose dist/cli/main.js loads
 * the sources through tsx, so the test needs no build; npm, the bootstrap
 * script, the CLI and the workers are the real ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { eventually, REPO } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { MARKER_VARIABLE, newMarker, processesWithMarker } from '../helpers/processes.js';
import { connectClient, isEvent, isHandshake } from '../helpers/ws-client.js';

const DRAIN_SECONDS = 3;
let project: string;
const started: { child: ChildProcess; marker: string }[] = [];

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'quillman-shutdown-'));
  mkdirSync(join(project, 'scripts'));
  mkdirSync(join(project, 'dist/cli'), { recursive: true });
  for (const f of ['bootstrap.mjs', 'newest-mtime.mjs']) copyFileSync(join(REPO, 'scripts', f), join(project, 'scripts', f));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'quillman-shutdown-test', private: true, type: 'module', scripts: { start: 'node scripts/bootstrap.mjs start' } }));
  writeFileSync(join(project, 'package-lock.json'), JSON.stringify({ name: 'quillman-shutdown-test', lockfileVersion: 3, packages: {} }));
  // Older than the installed packages and the build stamp: the bootstrap finds nothing to install or build.
  for (const f of ['package.json', 'package-lock.json']) utimesSync(join(project, f), 1, 1);
  symlinkSync(join(REPO, 'node_modules'), join(project, 'node_modules'));
  writeFileSync(join(project, 'dist/.build-stamp'), String(Date.now()));
  writeFileSync(
    join(project, 'dist/cli/main.js'),
    `import { register } from 'tsx/esm/api';\nregister();\nawait import(${JSON.stringify(pathToFileURL(join(REPO, 'src/cli/main.ts')).href)});\n`,
  );
});

afterEach(async () => {
  // Whatever a failed test left: the whole tree, by its marker.
  for (const { child, marker } of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of processesWithMarker(marker)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

interface Started {
  npm: ChildProcess;
  marker: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

async function npmStart(): Promise<Started> {
  const marker = newMarker();
  const port = await freePort();
  const workerPort = await freePort();
  const npm = spawn('npm', ['start', '--silent', '--', '--engine', 'loopback', '--port', String(port), '--warm', '2', '--max-workers', '2', '--worker-base-port', String(workerPort)], {
    cwd: project,
    // A group of its own, like a shell job: a terminal's Ctrl-C goes to the whole group.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, [MARKER_VARIABLE]: marker, QUILLMAN_DRAIN_SECONDS: String(DRAIN_SECONDS), QUILLMAN_LOG_FORMAT: 'json' },
  });
  started.push({ child: npm, marker });
  let output = '';
  npm.stdout!.on('data', (d) => (output += d));
  npm.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200, 60_000, '`npm start` to serve');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${output.slice(-3000)}`);
  }
  // npm, the bootstrap, the gateway, two workers and their watchdog.
  expect(processesWithMarker(marker).length).toBeGreaterThanOrEqual(5);
  return { npm, marker, port, exited, output: () => output };
}

async function liveConversation(port: number) {
  const client = connectClient(`ws://127.0.0.1:${port}/api/chat`);
  await client.waitFor(isHandshake, 20_000);
  return client;
}

async function expectAllGone(run: Started): Promise<void> {
  await eventually(() => processesWithMarker(run.marker).length === 0, 40_000, `every process to exit; left: ${processesWithMarker(run.marker).join(', ')}`).catch((err: Error) => {
    throw new Error(`${err.message}\n${run.output().slice(-3000)}`);
  });
}

describe('stopping npm start', () => {
  it('SIGTERM to npm drains the live conversation, then stops the bootstrap, the gateway and its workers', async () => {
    const run = await npmStart();
    const client = await liveConversation(run.port);
    run.npm.kill('SIGTERM');
    await client.waitFor(isEvent('ending_soon'), 20_000);
    expect(client.events()).toContainEqual({ type: 'ending_soon', secondsLeft: DRAIN_SECONDS });
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.GoingAway);
    expect(client.events()).toContainEqual({ type: 'ended', reason: 'shutdown' });
    await expectAllGone(run);
  });

  it('Ctrl-C (SIGINT to the whole group, so several copies) still drains instead of cutting the conversation', async () => {
    const run = await npmStart();
    const client = await liveConversation(run.port);
    process.kill(-run.npm.pid!, 'SIGINT');
    await client.waitFor(isEvent('ending_soon'), 20_000);
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.GoingAway);
    await expectAllGone(run);
  });

  it('SIGHUP (the terminal went away) stops everything', async () => {
    const run = await npmStart();
    run.npm.kill('SIGHUP');
    await expectAllGone(run);
  });

  it('npm killed outright (SIGKILL): the orphaned bootstrap stops everything it started', async () => {
    const run = await npmStart();
    const client = await liveConversation(run.port);
    run.npm.kill('SIGKILL');
    await client.waitFor(isEvent('ending_soon'), 20_000);
    expect((await client.closed).code).toBe(CloseCode.GoingAway);
    await expectAllGone(run);
  });
});
