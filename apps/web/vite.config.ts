import { defineConfig } from 'vite';

// A static bundle: `base: './'` lets it be served from any folder (and by `webtune webui`).
// The engine worker is an ES module worker, bundled on its own.
export default defineConfig({
  base: './',
  build: {
    target: 'es2022',
    outDir: 'dist',
    sourcemap: true,
    chunkSizeWarningLimit: 2048,
  },
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
});
