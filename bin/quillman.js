#!/usr/bin/env node
// Runs the built CLI; `npm run build` (or `npm start`) produces dist/.
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('QuiLLMan is not built yet: run `npm run build` (or `npm start`) in the repository first.');
    process.exit(1);
  }
  throw err;
});
