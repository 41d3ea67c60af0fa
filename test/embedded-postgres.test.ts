import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../server/db/embedded.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixture = path.join(root, 'test/fixtures/embedded-postgres-child.ts')
// orphan detection reads /proc (Linux); elsewhere only Postgres' own lock file check applies
const needsProc = { skip: !existsSync('/proc/self/stat') && 'needs /proc' }

// Everything this file starts or creates, so that it is cleaned up even when the run is
// interrupted: a signal kills this process before any after() hook runs, and the test body goes
// on running meanwhile, so nothing new may start once cleaning began.
const dirs = new Set<string>()
const clusters = new Set<Promise<EmbeddedPostgresHandle>>()
const children = new Set<ChildProcess>()
let cleaning: Promise<void> | undefined

function ensureNotClosing (): void {
  if (cleaning) throw new Error('test run interrupted')
}

async function cleanUp (): Promise<void> {
  cleaning ??= (async () => {
    // each fixture leads its own process group, with its postgres in it
    for (const child of children) killGroup(child)
    await Promise.allSettled([...clusters].map(async db => { await (await db).stop() }))
    // retries: postgres processes may still be writing while they exit
    await Promise.allSettled([...dirs].map(async dir => {
      await rm(dir, { recursive: true, force: true, maxRetries: 5 })
    }))
  })()
  await cleaning
}
after(cleanUp)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // the test runner that reads our output may be gone already: do not die of EPIPE meanwhile
    process.stdout.on('error', () => {})
    process.stderr.on('error', () => {})
    void cleanUp().finally(() => process.kill(process.pid, signal))
  })
}

async function tempDir (): Promise<string> {
  ensureNotClosing()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'herald-embedded-'))
  dirs.add(dir)
  ensureNotClosing()
  return dir
}

async function start (dataDir: string): Promise<EmbeddedPostgresHandle> {
  ensureNotClosing()
  const starting = startEmbeddedPostgres({ dataDir })
  clusters.add(starting)
  const db = await starting
  return { url: db.url, stop: async () => { clusters.delete(starting); await db.stop() } }
}

async function query (url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}

async function readValues (dataDir: string): Promise<string[]> {
  const db = await start(dataDir)
  try {
    const { rows } = await query(db.url, 'select value from crash_rows order by value')
    return rows.map(r => r.value as string)
  } finally {
    await db.stop()
  }
}

/** Runs the fixture in its own process group and resolves once it printed "ready". */
async function startChild (dataDir: string, value: string): Promise<ChildProcess> {
  ensureNotClosing()
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir, value], {
    cwd: root,
    detached: true,
    // the fixture exits when its stdin closes, i.e. when this process dies
    stdio: ['pipe', 'pipe', 'pipe']
  })
  children.add(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', line => { if (line === 'ready') resolve() })
    child.once('exit', code => { reject(new Error(`fixture exited with ${code} before ready:\n${stderr}`)) })
  })
  return child
}

function killGroup (child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL')
  } catch {} // already gone
}

async function postmasterPid (dataDir: string): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'postgres/postmaster.pid'), 'utf8')).split('\n')[0])
}

/** Whether the process runs; a zombie (reparented and not yet reaped) counts as gone. */
function isAlive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z'
  } catch {
    return false
  }
}

test('keeps its data across a clean stop and start', async () => {
  const dataDir = await tempDir()
  const first = await start(dataDir)
  assert.match(first.url, /^postgres:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/herald$/)
  assert.notEqual(new URL(first.url).port, '5432')
  await query(first.url, 'create table crash_rows (value text not null)')
  await query(first.url, 'insert into crash_rows (value) values ($1)', ['clean'])
  await first.stop()
  await first.stop() // idempotent
  assert.equal(existsSync(path.join(dataDir, 'postgres/postmaster.pid')), false, 'a clean stop removes postmaster.pid')

  const second = await start(dataDir)
  try {
    assert.deepEqual((await query(second.url, 'select value from crash_rows')).rows, [{ value: 'clean' }])
    const { rows } = await query(second.url,
      'select pg_encoding_to_char(encoding) as encoding from pg_database where datname = current_database()')
    assert.deepEqual(rows, [{ encoding: 'UTF8' }])
  } finally {
    await second.stop()
  }
})

test('comes back after its process group was killed with SIGKILL', async () => {
  const dataDir = await tempDir()
  const child = await startChild(dataDir, 'before-crash')
  const postmaster = await postmasterPid(dataDir)
  const exited = once(child, 'exit')
  process.kill(-child.pid!, 'SIGKILL')
  await exited

  // postmaster.pid stays behind, naming a dead (often not yet reaped) postmaster
  assert.equal(existsSync(path.join(dataDir, 'postgres/postmaster.pid')), true)
  assert.deepEqual(await readValues(dataDir), ['before-crash'])
  assert.equal(isAlive(postmaster), false)
})

test('stops the orphaned postmaster when only the node process was killed', needsProc, async () => {
  const dataDir = await tempDir()
  const child = await startChild(dataDir, 'orphaned')
  const orphan = await postmasterPid(dataDir)

  // while its owner runs, a second start on the same directory is refused
  await assert.rejects(start(dataDir), /in use by postgres pid/)

  const exited = once(child, 'exit')
  process.kill(child.pid!, 'SIGKILL')
  await exited
  assert.equal(isAlive(orphan), true, 'the postmaster outlives its node parent')

  assert.deepEqual(await readValues(dataDir), ['orphaned'])
  assert.equal(isAlive(orphan), false, 'the orphan was stopped')
})

test('refuses a second start on a directory this process already runs', needsProc, async () => {
  const dataDir = await tempDir()
  const db = await start(dataDir)
  try {
    await assert.rejects(start(dataDir), /in use by postgres pid/)
  } finally {
    await db.stop()
  }
})
