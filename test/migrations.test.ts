// Migrations: from empty, twice, ten at once, and through `npm run migrate`; the schema they make
// is the one committed in test/schema.sql.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { schemaText } from './helpers/schema.js'
import { ROOT } from './helpers/process.js'
import { createPool, type Pool } from '../server/db/pool.js'
import { expectedMigrations, migrate } from '../server/db/migrate.js'

const databases: TestDatabase[] = []
after(async () => { await Promise.all(databases.map(db => db.drop())) })

async function emptyDatabase (): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrated: false })
  databases.push(db)
  return db
}

async function migrationFiles (): Promise<string[]> {
  return (await readdir(path.join(ROOT, 'migrations'))).filter(f => f.endsWith('.sql')).sort()
}

async function appliedRows (pool: Pool): Promise<string[]> {
  return (await pool.query<{ name: string }>('select name from schema_migrations order by name')).rows.map(r => r.name)
}

test('an empty database gets every migration; a second run applies nothing and changes nothing', async () => {
  const files = await migrationFiles()
  assert.ok(files.length >= 1)
  assert.deepEqual(await expectedMigrations(), files, 'every .sql file in migrations/ is a numbered migration')
  const db = await emptyDatabase()

  const first = await migrate(db.pool)
  assert.deepEqual(first.applied, files)
  assert.deepEqual(await appliedRows(db.pool), files)
  const schema = await schemaText(db.pool)
  for (const table of ['messages', 'deliveries', 'devices', 'api_keys', 'settings', 'schema_migrations']) {
    assert.match(schema, new RegExp(`^create table ${table} \\(`, 'm'), `table ${table} exists`)
  }

  const second = await migrate(db.pool)
  assert.deepEqual(second.applied, [])
  assert.deepEqual(await appliedRows(db.pool), files)
  assert.equal(await schemaText(db.pool), schema)
})

// As graphile-worker does with __tests__/schema.sql: a migration that changes the schema shows
// in review as a change to this file, and one that changes it by accident fails here.
const SNAPSHOT = path.join(ROOT, 'test', 'schema.sql')
const UPDATE_ENV = 'UPDATE_SCHEMA_SNAPSHOT'

test('the migrated schema is the one committed in test/schema.sql', async () => {
  const db = await emptyDatabase()
  await migrate(db.pool)
  const schema = await schemaText(db.pool)
  if (process.env[UPDATE_ENV] === '1') await writeFile(SNAPSHOT, schema)
  const committed = await readFile(SNAPSHOT, 'utf8').catch(() => '')
  assert.equal(schema, committed, 'the migrations make a schema other than test/schema.sql. If that is intended, ' +
    'run `npm run schema:snapshot` and commit test/schema.sql with the migration; if not, the diff shows what changed')
})

test('10 concurrent migrate() calls on one empty database all succeed and apply each file once', async () => {
  const files = await migrationFiles()
  const db = await emptyDatabase()
  // ten pools: ten "processes" starting at once
  const pools = Array.from({ length: 10 }, () => createPool({ connectionString: db.url, max: 2 }))
  try {
    const results = await Promise.allSettled(pools.map(p => migrate(p)))
    const failed = results.filter(r => r.status === 'rejected') as PromiseRejectedResult[]
    assert.deepEqual(failed.map(r => String(r.reason)), [], 'every migrate() call succeeds')
    const applied = results.flatMap(r => (r as PromiseFulfilledResult<{ applied: string[] }>).value.applied).sort()
    assert.deepEqual(applied, files, 'each file applied by exactly one call')
  } finally {
    await Promise.all(pools.map(p => p.end()))
  }
  const { rows } = await db.pool.query<{ name: string, n: number }>(
    'select name, count(*)::int as n from schema_migrations group by name order by name')
  assert.deepEqual(rows, files.map(name => ({ name, n: 1 })))
  assert.deepEqual((await migrate(db.pool)).applied, [])
})

test('`npm run migrate` (server/migrateCli.ts) applies, then reports the schema up to date', async () => {
  const files = await migrationFiles()
  const db = await emptyDatabase()
  const first = await runMigrateCli(db.url)
  assert.equal(first.code, 0, first.output)
  assert.match(first.stdout, /applied/)
  for (const f of files) assert.ok(first.stdout.includes(f), `${f} named in: ${first.stdout}`)
  assert.deepEqual(await appliedRows(db.pool), files)

  const second = await runMigrateCli(db.url)
  assert.equal(second.code, 0, second.output)
  assert.match(second.stdout, /up to date/)
  assert.deepEqual(await appliedRows(db.pool), files)
})

test('`npm run migrate` with a bad DATABASE_URL exits 2 and names it, without a stack trace', async () => {
  const run = await runMigrateCli('mysql://localhost/herald')
  assert.equal(run.code, 2, run.output)
  assert.match(run.stderr, /DATABASE_URL/)
  assert.ok(!run.stderr.includes('    at '), run.output)
})

interface CliRun { code: number | null, stdout: string, stderr: string, output: string }

async function runMigrateCli (databaseUrl: string): Promise<CliRun> {
  const env: Record<string, string> = {}
  const notPassed = ['NODE_TEST_CONTEXT', 'NODE_OPTIONS', 'TEST_DATABASE_URL']
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !notPassed.includes(k)) env[k] = v
  env.DATABASE_URL = databaseUrl
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/migrateCli.ts'], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', c => resolve(c)))
  clearTimeout(timer)
  return { code, stdout, stderr, output: `stdout: ${stdout}\nstderr: ${stderr}` }
}
