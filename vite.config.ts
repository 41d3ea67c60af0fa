// The web front end (web/): two pages, the admin UI (/admin) and the browser demo device
// (/demo), built into dist/web and served by the Herald server itself (server/admin/pages.ts).
// `npm run dev:web` serves them with hot reload at http://localhost:5173/web/admin/ and proxies
// the API and MQTT to a Herald on HERALD_URL (default http://localhost:8080).
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const web = (p: string): string => fileURLToPath(new URL(`./web/${p}`, import.meta.url))
const herald = process.env.HERALD_URL ?? 'http://localhost:8080'

export default defineConfig({
  root: web(''),
  // asset URLs are /web/assets/…; the pages themselves are served at /admin and /demo
  base: '/web/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist/web', import.meta.url)),
    emptyOutDir: true,
    // server/admin/pages.ts recognises a finished build by this manifest
    manifest: true,
    sourcemap: true,
    // the CSP forbids inline script: never inline the module preload polyfill or small assets as data: scripts
    modulePreload: { polyfill: false },
    rolldownOptions: {
      input: { admin: web('admin/index.html'), demo: web('demo/index.html') },
      // code both pages use (React, the stylesheet) goes in one shared chunk
      output: { chunkFileNames: 'assets/shared-[hash].js' }
    }
  },
  server: {
    proxy: {
      '/admin/api': herald,
      '/v1': herald,
      '/mqtt': { target: herald.replace(/^http/, 'ws'), ws: true }
    }
  }
})
