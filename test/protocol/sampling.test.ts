import { describe, expect, it } from 'vitest';
import { defaultSamplingParams, describeParamIssues, parseSamplingParams, samplingToQuery } from '../../src/protocol/sampling.js';

describe('sampling parameters', () => {
  it('parses the parameters Kyutai clients send and keeps unknown ones for forwarding', () => {
    const q = new URLSearchParams('text_temperature=0.7&text_topk=25&audio_temperature=0.8&audio_topk=250&pad_mult=0&repetition_penalty=1.0&repetition_penalty_context=64&text_seed=123&audio_seed=456&worker_auth_id=abc');
    const r = parseSamplingParams(q);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.params).toEqual({ text_temperature: 0.7, text_topk: 25, audio_temperature: 0.8, audio_topk: 250, pad_mult: 0, repetition_penalty: 1, repetition_penalty_context: 64, text_seed: 123, audio_seed: 456 });
    expect(r.passthrough).toEqual([['worker_auth_id', 'abc']]);
  });

  it.each([
    ['text_temperature=5', /text_temperature must be between 0.2 and 1.2, got 5/],
    ['text_topk=2.5', /text_topk must be a whole number/],
    ['audio_topk=abc', /audio_topk must be a number/],
    ['pad_mult=-9', /pad_mult must be between -4 and 4/],
    ['text_seed=-1', /text_seed must be between/],
    ['text_topk=20&text_topk=30', /more than once/],
    ['text_temperature=', /must be a number/],
    ['text_temperature=Infinity', /must be a number/],
    ['persona=' + 'x'.repeat(5000), /persona is 5000 characters; the limit is 4000/],
  ])('rejects %s', (query, message) => {
    const r = parseSamplingParams(new URLSearchParams(query));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(describeParamIssues(r.issues)).toMatch(message);
  });

  it('gathers every issue into one message that says what to do', () => {
    const r = parseSamplingParams(new URLSearchParams('text_temperature=9&audio_topk=1'));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues).toHaveLength(2);
      expect(describeParamIssues(r.issues)).toMatch(/Fix the settings and reconnect/);
    }
  });

  it('round-trips through a query string', () => {
    const params = defaultSamplingParams(() => 0.5);
    const r = parseSamplingParams(samplingToQuery({ ...params, persona: 'A pirate.' }));
    expect(r.ok && r.params).toEqual({ ...params, persona: 'A pirate.' });
  });
});
