// `npm test [-- <filter>… | --<node test flag>=<value>…]`
//
// Runs every test/*.test.ts (or those whose name contains one of the filters), each in its own
// node process, several at a time, against TEST_DATABASE_URL / DATABASE_URL when set, else
// against an embedded Postgres in a temporary directory that is removed afterwards. The schema
// is migrated once, into a template database that each file's databases are copied from
// (test/helpers/db.ts). A file's output is printed in one piece when it ends, and the run ends
// with every file's duration, slowest first.
//
// The project is compiled to JavaScript once first (test/helpers/compiledTree.ts) and each file
// runs on plain node; `--tsx` runs the sources through tsx instead (slower: each process compiles
// what it imports). `--test-concurrency=<n>` sets how many files run at once (default below);
// `--copies=<k>` runs each file k times, the copies side by side: load and copies of itself find
// races and timing assumptions that a lone run passes (files that build or pack into the project
// tree, `build` and the `*-pack`/`sdk-package` ones, share it and are not for copies);
// every other flag (`--test-name-pattern=…`, `--test-only`, `--test-reporter=…`) goes to each
// file's process.
// The benchmark's smoke test is apart: `npm run test:bench`.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../server/db/embedded.js'
import { createTemplateDatabase, TEMPLATE_ENV } from './helpers/db.js'
import { buildCompiledTree } from './helpers/compiledTree.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SIGNAL_EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 }

// Much of a test file's time is spent waiting (on timers, child processes, sockets, Postgres),
// so more files than cores run at once. Measured on 2 cores: 3, 4 and 6 at a time all keep both
// cores busy (the suite is ~190 s of CPU, Postgres' included) and end within 10% of each other;
// at 6, servers began to answer 503 database-unavailable (connections refused or timed out).
const DEFAULT_CONCURRENCY = 4

// A file still running after this long is stopped and counted failed: a test that hangs (a wait
// for an event that never comes, without its own timeout) should fail the run in minutes, not
// hold CI until its limit. The slowest file takes ~45 s on a loaded 2-core machine.
const FILE_TIMEOUT_MS = 180_000

// The files that take longest start first, so that none of them is left running alone at the
// end: the longest alone on an idle machine, longest first (the durations printed after each run
// show whether this list is still right; a stale one only costs time). The others follow in name
// order.
const SLOW_FIRST = [
  'browser-admin', 'cluster-processes', 'password-limiter', 'stalled-device', 'restart', 'cluster', 'sdk-package',
  'database-outage', 'sdk-backend-pack', 'webhooks', 'ledger-reads', 'browser-nodes', 'browser-demo', 'browser-webhooks'
]

const args = process.argv.slice(2)
const concurrencyFlag = args.find(a => a.startsWith('--test-concurrency='))
const concurrency = concurrencyFlag ? Number(concurrencyFlag.split('=')[1]) : DEFAULT_CONCURRENCY
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`${concurrencyFlag} must be a whole number of files, 1 or more`)
  process.exit(1)
}
const copiesFlag = args.find(a => a.startsWith('--copies='))
const copies = copiesFlag ? Number(copiesFlag.split('=')[1]) : 1
if (!Number.isInteger(copies) || copies < 1) {
  console.error(`${copiesFlag} must be a whole number of copies, 1 or more`)
  process.exit(1)
}
const fromSources = args.includes('--tsx')
const nodeFlags = args.filter(a => a.startsWith('-') && a !== concurrencyFlag && a !== copiesFlag && a !== '--tsx')
const filters = args.filter(a => !a.startsWith('-'))
// node's default for output that is not a terminal is TAP; spec reads better, unless asked otherwise
const reporterFlags = nodeFlags.some(a => a.startsWith('--test-reporter')) ? [] : ['--test-reporter=spec']

const rank = (file: string): number => {
  const i = SLOW_FIRST.findIndex(name => file === `${name}.test.ts`)
  return i === -1 ? SLOW_FIRST.length : i
}
const files = (await readdir(path.join(root, 'test')))
  .filter(f => f.endsWith('.test.ts'))
  .filter(f => filters.length === 0 || filters.some(filter => f.includes(filter)))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  .map(f => path.join('test', f))
if (files.length === 0) {
  console.error(`no test file matches ${filters.map(f => JSON.stringify(f)).join(', ')}`)
  process.exit(1)
}

let interrupted: NodeJS.Signals | undefined
const running = new Set<ChildProcess>()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = signal
    for (const child of running) child.kill(signal)
  })
}

/** A file, and which of its copies when it runs more than once (`--copies`). */
interface Run { file: string, copy: number }
const nameOf = ({ file, copy }: Run): string => copies === 1 ? file : `${file} (copy ${copy})`

interface FileResult { run: Run, code: number, ms: number, output: Buffer }

// A failed file's output is printed again after the summary, cut to its last lines (where node's
// spec reporter lists the failing tests with their errors): a CI log that keeps only its end
// still says why.
const FAILED_TAIL_LINES = 150

/** Runs one test file in its own process; its output is printed whole once it ends. */
async function runFile (run: Run, env: NodeJS.ProcessEnv, compiled: string | undefined): Promise<FileResult> {
  const { file } = run
  const started = performance.now()
  const entry = compiled === undefined
    ? ['--import', 'tsx', file]
    : ['--enable-source-maps', path.join(compiled, file.replace(/\.ts$/, '.js'))]
  // without --test: node:test runs the file's tests in this one process (no runner process per file)
  const child = spawn(process.execPath, [...reporterFlags, ...nodeFlags, ...entry], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  running.add(child)
  const output: Buffer[] = []
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk))
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk))
  // SIGTERM first, so the file can stop the servers it started (test/helpers/process.ts)
  const timer = setTimeout(() => {
    output.push(Buffer.from(`\n✖ ${nameOf(run)} still running after ${FILE_TIMEOUT_MS / 1000} s: stopped\n`))
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref()
  }, FILE_TIMEOUT_MS)
  const code = await new Promise<number>(resolve => {
    child.once('error', err => { output.push(Buffer.from(`${err.stack ?? err}\n`)); resolve(1) })
    child.once('close', (code, signal) => { resolve(code ?? SIGNAL_EXIT_CODES[signal ?? ''] ?? 1) })
  })
  clearTimeout(timer)
  running.delete(child)
  const ms = performance.now() - started
  process.stdout.write(`\n${code === 0 ? '✔' : '✖'} ${nameOf(run)} (${(ms / 1000).toFixed(1)} s)\n`)
  process.stdout.write(Buffer.concat(output))
  return { run, code, ms, output: Buffer.concat(output) }
}

async function runAll (env: NodeJS.ProcessEnv, compiled: string | undefined): Promise<FileResult[]> {
  // a file's copies next to each other, so that they run side by side
  const queue: Run[] = files.flatMap(file => Array.from({ length: copies }, (_, i) => ({ file, copy: i + 1 })))
  const results: FileResult[] = []
  const worker = async (): Promise<void> => {
    // an interrupt (a signal handler sets `interrupted`) starts no further file
    for (let run = queue.shift(); run !== undefined; run = queue.shift()) {
      if (interrupted) return
      results.push(await runFile(run, env, compiled))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length * copies) }, worker))
  return results
}

function report (results: FileResult[], ms: number): void {
  const lines = [...results].sort((a, b) => b.ms - a.ms)
    .map(r => `${r.code === 0 ? '  ' : '✖ '}${(r.ms / 1000).toFixed(1).padStart(6)} s  ${nameOf(r.run)}`)
  const failed = results.filter(r => r.code !== 0)
  const runs = copies === 1 ? `${files.length} files` : `${files.length} files × ${copies} copies`
  console.log(`\n${runs}, ${concurrency} at a time, in ${(ms / 1000).toFixed(1)} s:\n${lines.join('\n')}`)
  for (const r of failed) {
    const outputLines = r.output.toString().trimEnd().split('\n')
    const cut = outputLines.length > FAILED_TAIL_LINES
      ? `(its last ${FAILED_TAIL_LINES} of ${outputLines.length} lines) `
      : ''
    console.log(`\n── ${nameOf(r.run)} failed ${cut}──\n${outputLines.slice(-FAILED_TAIL_LINES).join('\n')}`)
  }
  if (failed.length > 0) console.log(`\nfailed:\n${failed.map(r => `  ${nameOf(r.run)}`).join('\n')}`)
  const skipped = files.length * copies - results.length
  if (skipped > 0) console.log(`\n${skipped} ${copies === 1 ? 'files' : 'copies'} not run (interrupted)`)
}

let embedded: EmbeddedPostgresHandle | undefined
let tempDir: string | undefined
let compiledDir: string | undefined
let template: { name: string, drop: () => Promise<void> } | undefined
let exitCode = 1
const started = performance.now()
try {
  const env = { ...process.env }
  // a file's output goes through a pipe to be printed whole: keep the spec reporter's colours for a terminal
  if (process.stdout.isTTY && env.NO_COLOR === undefined) env.FORCE_COLOR ??= '1'
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
  template = await createTemplateDatabase((env.TEST_DATABASE_URL ?? env.DATABASE_URL)!)
  env[TEMPLATE_ENV] = template.name
  if (!fromSources) {
    compiledDir = await mkdtemp(path.join(os.tmpdir(), 'herald-test-js-'))
    const t0 = performance.now()
    const count = await buildCompiledTree(root, compiledDir)
    console.error(`compiled ${count} files in ${Math.round(performance.now() - t0)} ms (--tsx runs the sources)`)
  }

  if (interrupted) {
    exitCode = SIGNAL_EXIT_CODES[interrupted]!
  } else {
    const results = await runAll(env, compiledDir)
    report(results, performance.now() - started)
    exitCode = interrupted
      ? SIGNAL_EXIT_CODES[interrupted]!
      : results.some(r => r.code !== 0) ? 1 : 0
  }
} catch (err) {
  console.error(err)
} finally {
  await template?.drop().catch((err: unknown) => { console.error('dropping the template database failed:', err) })
  await embedded?.stop().catch((err: unknown) => { console.error('stopping the embedded Postgres failed:', err) })
  for (const dir of [tempDir, compiledDir]) {
    if (dir === undefined) continue
    await rm(dir, { recursive: true, force: true, maxRetries: 5 }).catch((err: unknown) => { console.error(err) })
  }
}
process.exit(exitCode)
