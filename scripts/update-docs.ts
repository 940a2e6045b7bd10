/** `npm run docs`: regenerates the generated parts of the docs (the README's settings table). */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { withSettingsTable } from '../src/config/settings-table.js';

const readme = resolve(import.meta.dirname, '../README.md');
writeFileSync(readme, withSettingsTable(readFileSync(readme, 'utf8')));
process.stdout.write('README.md settings table updated\n');
