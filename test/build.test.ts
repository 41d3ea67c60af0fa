// server/build.mjs, which `npm start` runs first: what it rebuilds and when. Each test runs the real
// script in a temporary copy of the project where tsc and vite are stand-ins that record their call
// and write the file a finished build leaves, so a case takes a few node starts, not a real build.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import {
  copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// CommonJS (the temporary project has no package.json): records "server" or "web" in calls.log, then
// fails as a file fail-<part> says (`exit`, or `kill` itself after writing its output, as a build
// interrupted half-way would), or writes its output like the real tool.
const STAND_IN = `
const fs = require('node:fs')
const part = process.argv[1].includes('vite') ? 'web' : 'server'
fs.appendFileSync('calls.log', part + '\\n')
const output = part === 'web' ? 'dist/web/.vite/manifest.json' : 'dist/server/main.js'
const failure = fs.existsSync('fail-' + part) ? fs.readFileSync('fail-' + part, 'utf8') : ''
if (failure === 'exit') process.exit(2)
fs.mkdirSync(require('node:path').dirname(output), { recursive: true })
fs.writeFileSync(output, '{}')
if (failure === 'kill') process.kill(process.pid, 'SIGKILL')
`

interface Project {
  dir: string
  write: (file: string, text: string) => void
  /** runs server/build.mjs; `built` lists the stand-ins it called, in order */
  start: (...args: string[]) => Promise<{ status: number | null, built: string[] }>
}

function project (t: { after: (fn: () => void) => void }): Project {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-build-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const write = (file: string, text: string): void => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    writeFileSync(path.join(dir, file), text)
  }
  mkdirSync(path.join(dir, 'server'))
  copyFileSync(path.join(repo, 'server/build.mjs'), path.join(dir, 'server/build.mjs'))
  write('server/main.ts', 'export {}\n')
  write('server/db/pool.ts', 'export {}\n')
  write('web/admin/index.html', '<!doctype html>\n')
  write('tsconfig.json', '{}\n')
  write('vite.config.ts', 'export default {}\n')
  write('package-lock.json', '{"lockfileVersion": 3}\n')
  write('node_modules/typescript/bin/tsc', STAND_IN)
  write('node_modules/vite/bin/vite.js', STAND_IN)
  return {
    dir,
    write,
    start: async (...args) => {
      rmSync(path.join(dir, 'calls.log'), { force: true })
      // from another directory: the script finds its project by its own path, not the working directory
      const child = spawn(process.execPath, [path.join(dir, 'server/build.mjs'), ...args], {
        cwd: os.tmpdir(), stdio: 'ignore'
      })
      const status = await new Promise<number | null>(resolve => child.once('exit', resolve))
      const calls = existsSync(path.join(dir, 'calls.log')) ? readFileSync(path.join(dir, 'calls.log'), 'utf8') : ''
      return { status, built: calls.split('\n').filter(Boolean) }
    }
  }
}

// each case has its own temporary project: they run side by side
describe('server/build.mjs', { concurrency: true }, () => {
  test('a fresh clone builds both parts; a start with nothing changed builds nothing', async t => {
    const p = project(t)
    assert.deepEqual(await p.start(), { status: 0, built: ['server', 'web'] })
    assert.deepEqual(await p.start(), { status: 0, built: [] })
  })

  test('an edit rebuilds only the part it belongs to', async t => {
    const p = project(t)
    await p.start()
    p.write('server/db/pool.ts', 'export const x = 1\n')
    assert.deepEqual((await p.start()).built, ['server'])
    p.write('web/admin/index.html', '<!doctype html><title>x</title>\n')
    assert.deepEqual((await p.start()).built, ['web'])
    p.write('tsconfig.json', '{"compilerOptions": {}}\n')
    assert.deepEqual((await p.start()).built, ['server'])
    p.write('vite.config.ts', 'export default { base: "/web/" }\n')
    assert.deepEqual((await p.start()).built, ['web'])
    p.write('package-lock.json', '{"lockfileVersion": 3, "packages": {}}\n')
    assert.deepEqual((await p.start()).built, ['server', 'web'], 'new dependencies can change either output')
  })

  test('an added or deleted file counts as a change; a touch without an edit does not', async t => {
    const p = project(t)
    await p.start()
    p.write('server/store/new.ts', 'export {}\n')
    assert.deepEqual((await p.start()).built, ['server'])
    rmSync(path.join(p.dir, 'server/store/new.ts'))
    assert.deepEqual((await p.start()).built, ['server'])
    const later = new Date(Date.now() + 60_000)
    utimesSync(path.join(p.dir, 'server/main.ts'), later, later)
    assert.deepEqual((await p.start()).built, [])
    // a file copied in with an old mtime (rsync -a, tar) is still noticed
    p.write('server/main.ts', 'export const y = 2\n')
    utimesSync(path.join(p.dir, 'server/main.ts'), new Date(0), new Date(0))
    assert.deepEqual((await p.start()).built, ['server'])
  })

  test('a failed build stops the start and runs again on the next one', async t => {
    const p = project(t)
    await p.start()
    p.write('server/main.ts', 'export const broken = \n')
    p.write('fail-server', 'exit')
    assert.deepEqual(await p.start(), { status: 2, built: ['server'] }, 'npm start stops before running dist/')
    assert.deepEqual(await p.start(), { status: 2, built: ['server'] }, 'unchanged sources do not hide the failure')
    rmSync(path.join(p.dir, 'fail-server'))
    assert.deepEqual(await p.start(), { status: 0, built: ['server'] }, 'the web UI was not stale, and is not rebuilt')
    assert.deepEqual((await p.start()).built, [])
  })

  test('a build killed half-way, after writing its output, is not taken as finished', async t => {
    const p = project(t)
    await p.start()
    p.write('server/main.ts', 'export const edited = 1\n')
    p.write('fail-server', 'kill')
    assert.deepEqual(await p.start(), { status: 1, built: ['server'] })
    // dist/server now holds (part of) the edit's build: going back to the stamped sources must rebuild
    p.write('server/main.ts', 'export {}\n')
    rmSync(path.join(p.dir, 'fail-server'))
    assert.deepEqual(await p.start(), { status: 0, built: ['server'] })
  })

  test('a missing output is rebuilt even when the sources match the stamp', async t => {
    const p = project(t)
    await p.start()
    // e.g. a `vite build` run by hand that was interrupted after emptying dist/web
    rmSync(path.join(p.dir, 'dist/web'), { recursive: true })
    assert.deepEqual((await p.start()).built, ['web'])
  })

  test('--all (npm run build) rebuilds both parts whatever changed', async t => {
    const p = project(t)
    await p.start()
    assert.deepEqual(await p.start('--all'), { status: 0, built: ['server', 'web'] })
    assert.deepEqual((await p.start()).built, [], 'and stamps them, so the next start builds nothing')
  })
})
