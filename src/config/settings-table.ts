/**
 * Generated parts of the docs: the README's configuration table, from the
 * one table the flags and variables come from, and docs/pool.md's providers
 * table, from the provider registry.
 */
import { PROVIDERS } from '../pool/registry.js';
import { PROVIDER_SETTINGS, SETTINGS, SettingsSchema, valueAt } from './settings.js';

function settingsTable(): string {
  const defaults = SettingsSchema.parse({ pool: { local: { command: 'worker --port {port}' } } });
  const rows = SETTINGS.map((spec) => {
    const value = valueAt(defaults, spec.path);
    const shown = spec.defaultText ?? (value === undefined ? '—' : Array.isArray(value) ? value.join(',') : String(value));
    return `| \`${spec.flag.split(' ')[0]}\` | \`${spec.env}\` | ${shown} | ${spec.description} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

function providersTable(): string {
  const yes = (flag: boolean) => (flag ? 'yes' : '—');
  const rows = PROVIDERS.map((provider) => {
    const flags = PROVIDER_SETTINGS.filter((spec) => spec.path.startsWith(`pool.${provider.name}.`)).map((spec) => `\`${spec.flag.split(' ')[0]}\``);
    const { launches, fixedSet, gpus } = provider.capabilities;
    return `| \`${provider.name}\` | ${yes(launches)} | ${yes(fixedSet)} | ${yes(gpus)} | \`pool.${provider.name}\`${flags.length ? `; ${flags.join(', ')}` : ''} | ${provider.description} |`;
  });
  return ['| provider | launches workers | fixed set | GPUs | settings | what it does |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

/** Replaces the section between `<!-- name:start -->` and `<!-- name:end -->` with `content`. */
function withMarkedSection(doc: string, name: string, content: string): string {
  const startMarker = `<!-- ${name}:start -->`;
  const start = doc.indexOf(startMarker);
  const end = doc.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`the ${name} markers are missing`);
  return `${doc.slice(0, start + startMarker.length)}\n${content}\n${doc.slice(end)}`;
}

/** Replaces the marked section of a document with the current settings table. */
export function withSettingsTable(doc: string): string {
  return withMarkedSection(doc, 'settings-table', settingsTable());
}

/** Replaces the marked section of a document with the current providers table. */
export function withProvidersTable(doc: string): string {
  return withMarkedSection(doc, 'providers-table', providersTable());
}
