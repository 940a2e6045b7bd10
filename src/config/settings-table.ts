/** The README's configuration table, generated from the one table the flags and variables come from. */
import { SETTINGS, SettingsSchema, valueAt } from './settings.js';

function settingsTable(): string {
  const defaults = SettingsSchema.parse({ pool: { local: { command: 'worker --port {port}' } } });
  const rows = SETTINGS.map((spec) => {
    const value = valueAt(defaults, spec.path);
    const shown = spec.defaultText ?? (value === undefined ? '—' : Array.isArray(value) ? value.join(',') : String(value));
    return `| \`${spec.flag.split(' ')[0]}\` | \`${spec.env}\` | ${shown} | ${spec.description} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

const TABLE_START = '<!-- settings-table:start -->';
const TABLE_END = '<!-- settings-table:end -->';

/** Replaces the marked section of a document with the current table. */
export function withSettingsTable(doc: string): string {
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error('the settings-table markers are missing');
  return `${doc.slice(0, start + TABLE_START.length)}\n${settingsTable()}\n${doc.slice(end)}`;
}
