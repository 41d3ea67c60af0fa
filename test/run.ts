// `npm test [-- <filter>… | --<node test flag>=<value>…]`
//
// Runs every test/*.test.ts (or those whose name contains one of the filters) with node:test,
// two files at a time, against TEST_DATABASE_URL / DATABASE_URL when set, else against an
// embedded Postgres in a temporary directory that is removed afterwards. Each test file creates
// its own database on that server (test/helpers/db.ts).
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../server/db/embedded.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SIGNAL_EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 }

const args = process.argv.slice(2)
const nodeFlags = args.filter(a => a.startsWith('-'))
const filters = args.filter(a => !a.startsWith('-'))

const files = (await readdir(path.join(root, 'test')))
  .filter(f => f.endsWith('.test.ts'))
  .filter(f => filters.length === 0 || filters.some(filter => f.includes(filter)))
  .sort()
  .map(f => path.join('test', f))
if (files.length === 0) {
  console.error(`no test file matches ${filters.map(f => JSON.stringify(f)).join(', ')}`)
  process.exit(1)
}

let interrupted: NodeJS.Signals | undefined
let forward: ((signal: NodeJS.Signals) => void) | undefined
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = signal
    forward?.(signal)
  })
}

let embedded: EmbeddedPostgresHandle | undefined
let tempDir: string | undefined
let exitCode = 1
try {
  const env = { ...process.env }
  if (env.TEST_DATABASE_URL ?? env.DATABASE_URL) {
    console.error(`tests use ${env.TEST_DATABASE_URL ? 'TEST_DATABASE_URL' : 'DATABASE_URL'}`)
  } else {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'herald-test-'))
    embedded = await startEmbeddedPostgres({
      dataDir: tempDir,
      log: { info () {}, warn: (obj, msg) => { console.error('embedded postgres:', msg, obj) } }
    })
    env.TEST_DATABASE_URL = embedded.url
    console.error(`tests use an embedded Postgres on 127.0.0.1:${new URL(embedded.url).port}`)
  }

  if (interrupted) {
    exitCode = SIGNAL_EXIT_CODES[interrupted]!
  } else {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...nodeFlags, ...files], {
      cwd: root,
      env,
      stdio: 'inherit'
    })
    forward = signal => { child.kill(signal) }
    exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code, signal) => { resolve(code ?? SIGNAL_EXIT_CODES[signal ?? ''] ?? 1) })
    })
  }
} catch (err) {
  console.error(err)
} finally {
  await embedded?.stop().catch((err: unknown) => { console.error('stopping the embedded Postgres failed:', err) })
  if (tempDir) await rm(tempDir, { recursive: true, force: true, maxRetries: 5 }).catch((err: unknown) => { console.error(err) })
}
process.exit(exitCode)
