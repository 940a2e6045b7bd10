import { memo, useId } from 'react';
import { SAMPLING_PARAMS, parseSamplingParams, type SamplingParamName } from '../../../src/protocol/index.js';
import { defaultSettings, type Settings } from '../settings/settings.js';

type Spec = (typeof SAMPLING_PARAMS)[SamplingParamName];

function fieldIssue(name: SamplingParamName, value: string): string | undefined {
  if (value.trim() === '') return undefined;
  const parsed = parseSamplingParams(new URLSearchParams([[name, value.trim()]]));
  return parsed.ok ? undefined : parsed.issues[0].message;
}

function ParamField({ name, spec, value, onChange }: { name: SamplingParamName; spec: Spec; value: string; onChange: (v: string) => void }) {
  const id = useId();
  const issue = fieldIssue(name, value);
  if (spec.kind === 'string') {
    return (
      <div className="field field-wide">
        <label htmlFor={id}>{spec.label}</label>
        <textarea id={id} value={value} rows={3} maxLength={spec.maxLength} placeholder="Who the model should be (engines with a language model use it; Kyutai’s servers ignore it)" onChange={(e) => onChange(e.target.value)} />
      </div>
    );
  }
  const isSeed = name === 'text_seed' || name === 'audio_seed';
  return (
    <div className="field">
      <label htmlFor={id}>{spec.label}</label>
      <input
        id={id}
        type="number"
        inputMode="decimal"
        min={spec.min}
        max={spec.max}
        step={spec.kind === 'integer' ? 1 : 0.05}
        value={value}
        placeholder={isSeed ? 'random' : 'server default'}
        aria-invalid={issue ? true : undefined}
        aria-describedby={issue ? `${id}-issue` : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {issue && (
        <span className="field-issue" id={`${id}-issue`}>
          {issue}
        </span>
      )}
    </div>
  );
}

// Memoised: App re-renders on every stats report (4 a second), which leaves these props unchanged.
/** Sampling parameters, persona and server address; locked while a conversation runs. */
export const SettingsPanel = memo(function SettingsPanel({ settings, onChange, locked }: { settings: Settings; onChange: (s: Settings) => void; locked: boolean }) {
  const serverId = useId();
  const names = Object.keys(SAMPLING_PARAMS) as SamplingParamName[];
  return (
    <section className="panel settings" aria-labelledby="settings-title">
      <details>
        <summary>
          <h2 id="settings-title">Settings</h2>
          {locked && <span className="muted"> (locked while connected)</span>}
        </summary>
        <fieldset disabled={locked}>
          <div className="field field-wide">
            <label htmlFor={serverId}>Server address</label>
            <input
              id={serverId}
              type="text"
              value={settings.serverAddress}
              placeholder="this server (/api/chat)"
              spellCheck={false}
              autoCapitalize="off"
              onChange={(e) => onChange({ ...settings, serverAddress: e.target.value })}
            />
            <span className="field-help">Leave empty for this server. A Kyutai Moshi server works too, e.g. wss://host:8998/api/chat or localhost:8998.</span>
          </div>
          <div className="fields">
            {names.map((name) => (
              <ParamField key={name} name={name} spec={SAMPLING_PARAMS[name]} value={settings.params[name] ?? ''} onChange={(v) => onChange({ ...settings, params: { ...settings.params, [name]: v } })} />
            ))}
          </div>
          <button type="button" className="secondary" onClick={() => onChange({ ...defaultSettings(), serverAddress: settings.serverAddress })}>
            Reset to defaults
          </button>
        </fieldset>
      </details>
    </section>
  );
});
