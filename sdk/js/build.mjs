// `npm run build`, and `npm pack` through prepack. Two outputs:
// - dist/*.js + *.d.ts (tsc): ES2020 modules for Node and React Native, importing mqtt;
// - dist/browser/herald.js (esbuild): one minified ES module with mqtt.js inside, for browsers
//   with or without a bundler. platform 'browser' takes mqtt's browser build, and fails the
//   build if anything on this path imports a Node built-in.
// It prints the browser bundle's size, minified and gzipped.
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'

const here = path.dirname(fileURLToPath(import.meta.url))
const dist = path.join(here, 'dist')
const bundle = path.join(dist, 'browser/herald.js')

rmSync(dist, { recursive: true, force: true })

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const typed = spawnSync(process.execPath, [tsc, '-p', path.join(here, 'tsconfig.json')], { stdio: 'inherit' })
if (typed.status !== 0) process.exit(typed.status ?? 1)

await esbuild.build({
  entryPoints: [path.join(here, 'src/index.ts')],
  outfile: bundle,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  sourcemap: true,
  legalComments: 'eof',
  logLevel: 'warning'
})

const code = readFileSync(bundle)
const kb = bytes => `${(bytes / 1024).toFixed(1)} KiB`
console.log(`dist/browser/herald.js: ${kb(code.length)} minified, ${kb(gzipSync(code, { level: 9 }).length)} gzipped`)
