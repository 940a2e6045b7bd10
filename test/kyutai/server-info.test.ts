/**
 * The one server-info message per session that makes Kyutai's web client show
 * what the session runs with (its client rejects every other kind-4 shape).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChat } from '../../src/client/chat.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { KyutaiClientServerInfo } from './real-moshi.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.close();
});

describe('server info for Kyutai\'s web client', () => {
  it('is sent once per session, in the Rust backend\'s shape, with the values the session asked for and Kyutai\'s defaults for the rest', async () => {
    const result = await runChat({ url: gw.chatUrl, input: new Float32Array(24_000), lingerMs: 200, params: { text_temperature: 0.6, audio_topk: 120 } });
    expect(result.errors).toEqual([]);
    const infos = result.events.filter((e) => KyutaiClientServerInfo.safeParse(e).success);
    expect(infos).toHaveLength(1);
    const info = KyutaiClientServerInfo.parse(infos[0]);
    expect(info).toMatchObject({ text_temperature: 0.6, audio_topk: 120, text_topk: 25, audio_temperature: 0.8, pad_mult: 0, repetition_penalty: 1, repetition_penalty_context: 64 });
    expect(infos[0]).toMatchObject({ type: 'server_info' });
    expect(info.lm_model_file).toBe('loopback (test)');
    expect(info.instance_name).toMatch(/\/local-\d+$/);
    expect(info.build_info.git_hash).toMatch(/^([0-9a-f]{40}|unknown)$/);
    expect(info.build_info.rustc_version).toBe(`node ${process.version}`);
    // Our typed events go on as before.
    expect(result.events).toContainEqual(expect.objectContaining({ type: 'session' }));
  });
});
