import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  // Relative asset URLs: the gateway may serve the app under any path.
  base: './',
  plugins: [react()],
  // Workers and worklets are ES modules: the codec workers load their wasm fallback lazily.
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    // `npx vite --config web/vite.config.ts` against a local gateway or worker.
    proxy: { '/api': { target: process.env.QUILLMAN_API ?? 'ws://127.0.0.1:8000', ws: true } },
    fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] },
  },
});
