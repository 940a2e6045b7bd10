/** `npm run docs`: regenerates the generated parts of the docs (the README's settings table, docs/pool.md's providers table). */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { withProvidersTable, withSettingsTable } from '../src/config/settings-table.js';

const readme = resolve(import.meta.dirname, '../README.md');
writeFileSync(readme, withSettingsTable(readFileSync(readme, 'utf8')));
process.stdout.write('README.md settings table updated\n');
const poolDoc = resolve(import.meta.dirname, '../docs/pool.md');
writeFileSync(poolDoc, withProvidersTable(readFileSync(poolDoc, 'utf8')));
process.stdout.write('docs/pool.md providers table updated\n');
