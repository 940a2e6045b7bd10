import type { LiveStats } from '../session/session-types.js';

const fmt = (v: number | undefined, unit: string, digits = 0) => (v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(digits)} ${unit}`);

export function StatsPanel({ stats, codecs, engine }: { stats?: LiveStats; codecs: { encoder?: string; decoder?: string }; engine?: string }) {
  const missedShare = stats && stats.playedMs + stats.missedMs > 0 ? (100 * stats.missedMs) / (stats.playedMs + stats.missedMs) : undefined;
  return (
    <section className="panel stats" aria-labelledby="stats-title">
      <h2 id="stats-title">Stats</h2>
      <dl className="stats-grid">
        <dt title="Reply lag + capture + playout buffer + output device">Latency (est.)</dt>
        <dd data-stat="latency">{fmt(stats?.latencyMs, 'ms')}</dd>
        <dt title="Time from sending a moment of your audio to receiving the reply at that moment">Reply lag</dt>
        <dd data-stat="reply-lag">{fmt(stats?.replyLagMs, 'ms')}</dd>
        <dt>Buffer</dt>
        <dd data-stat="buffer">
          {fmt(stats?.bufferMs, 'ms')} <span className="muted">(target {fmt(stats?.targetMs, 'ms')})</span>
        </dd>
        <dt>Playout delay</dt>
        <dd data-stat="playout-delay">{fmt(stats?.playoutDelayMs, 'ms')}</dd>
        <dt>Missed audio</dt>
        <dd data-stat="missed">
          {fmt(stats?.missedMs, 'ms')} <span className="muted">({fmt(missedShare, '%', 1)}, {stats?.underruns ?? 0} underruns)</span>
        </dd>
        <dt>Bitrate</dt>
        <dd data-stat="bitrate">
          ↑ {fmt(stats?.sentKbps, 'kbps', 1)} · ↓ {fmt(stats?.receivedKbps, 'kbps', 1)}
        </dd>
        <dt>Codecs</dt>
        <dd>{codecs.encoder ? `${codecs.encoder} / ${codecs.decoder ?? '…'}` : '—'}</dd>
        {engine && (
          <>
            <dt>Engine</dt>
            <dd>{engine}</dd>
          </>
        )}
      </dl>
    </section>
  );
}
