import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ChildOutput } from '../../src/pool/providers/local/child-output.js';
import { captureLog } from './helpers.js';

function relay() {
  const { log, records } = captureLog();
  const output = new ChildOutput(log.child({ worker: 'local-7' }), 'local-7');
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  output.attach(stdout, 'stdout');
  output.attach(stderr, 'stderr');
  return { output, records, stdout, stderr };
}

const ended = (stream: PassThrough) => new Promise<void>((resolve) => stream.end(resolve));

describe("a worker's output", () => {
  it('is logged line by line under the worker id, split on \\n, \\r\\n and \\r, across chunks', async () => {
    const { records, stdout } = relay();
    stdout.write('Loading 10%\rLoading 20%\r\nhalf a ');
    stdout.write('line\n\n\x1b[32mgreen\x1b[0m\nno newline at the end');
    await ended(stdout);
    await new Promise((r) => setImmediate(r));
    expect(records.map((r) => r.msg)).toEqual(['[local-7] Loading 10%', '[local-7] Loading 20%', '[local-7] half a line', '[local-7] green', '[local-7] no newline at the end']);
    expect(records.every((r) => r.worker === 'local-7' && r.stream === 'stdout')).toBe(true);
  });

  it('relays pino JSON lines as their message at their level', async () => {
    const { records, stderr } = relay();
    stderr.write('{"level":40,"time":1,"msg":"model cache is cold"}\n{"level":50,"msg":"warm-up failed","err":{"message":"no such file"}}\n{"level":"x"}\n');
    await new Promise((r) => setImmediate(r));
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [40, '[local-7] model cache is cold'],
      [50, '[local-7] warm-up failed: no such file'],
      [30, '[local-7] {"level":"x"}'],
    ]);
  });

  it('stays bounded: long lines are cut, floods thinned, and only a short tail kept', async () => {
    const { output, records, stderr } = relay();
    stderr.write('x'.repeat(10_000) + '\n');
    for (let i = 0; i < 1000; i++) stderr.write(`line ${i}\n`);
    await new Promise((r) => setImmediate(r));
    expect(records[0].msg).toHaveLength('[local-7] '.length + 2001);
    expect(records.length).toBeLessThanOrEqual(200);
    await new Promise((r) => setTimeout(r, 1050));
    stderr.write('after the flood\n');
    await new Promise((r) => setImmediate(r));
    expect(records.at(-2)?.msg).toBe('[local-7] 801 lines of output not logged (more than 200 a second)');
    expect(records.at(-1)?.msg).toBe('[local-7] after the flood');
    expect(output.lastLines(3)).toEqual(['line 998', 'line 999', 'after the flood']);
    expect(output.lastLines(100)).toHaveLength(20);
  });

  it('quotes stderr when there is any, else stdout, and forgets both on clear()', async () => {
    const { output, stdout, stderr } = relay();
    stdout.write('only stdout\n');
    await new Promise((r) => setImmediate(r));
    expect(output.lastLines(5)).toEqual(['only stdout']);
    stderr.write('Traceback (most recent call last):\n');
    await new Promise((r) => setImmediate(r));
    expect(output.lastLines(5)).toEqual(['Traceback (most recent call last):']);
    output.clear();
    expect(output.lastLines(5)).toEqual([]);
  });
});
