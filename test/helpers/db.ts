import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createPool } from '../../server/db/pool.js'
import { migrate } from '../../server/db/migrate.js'

/** The Postgres the tests run against: set by test/run.ts (embedded) or by the caller. */
export function testServerUrl (): string {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL
  if (!url) {
    throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`, which starts an embedded Postgres')
  }
  return url
}

/**
 * The environment variable naming a database migrated once for the whole run (test/run.ts sets
 * it), which migrated test databases are copied from. Unset (a test file run directly with
 * `node --test`), each database is migrated on its own.
 */
export const TEMPLATE_ENV = 'HERALD_TEST_TEMPLATE'

export interface TestDatabase {
  url: string
  pool: pg.Pool
  drop: () => Promise<void>
}

function withDatabase (url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

async function adminQuery (serverUrl: string, ...statements: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    for (const sql of statements) await admin.query(sql)
  } finally {
    await admin.end()
  }
}

/**
 * A fresh database for one test file, migrated unless `migrated: false`, so files run in
 * parallel without sharing state. A migrated one is a copy of the run's template when there is
 * one (`create database … template`: a fraction of the time that migrating takes). `drop()`
 * removes it; a failed run leaves nothing behind either way because names are random and `drop`
 * runs in `after`.
 */
export async function createTestDatabase ({ migrated = true } = {}): Promise<TestDatabase> {
  const serverUrl = testServerUrl()
  const runTemplate = process.env[TEMPLATE_ENV]
  // it is spliced into SQL: only a name createTemplateDatabase() could have made
  if (runTemplate !== undefined && !TEMPLATE_NAME.test(runTemplate)) {
    throw new Error(`${TEMPLATE_ENV} is not a name createTemplateDatabase() makes: ${JSON.stringify(runTemplate)}`)
  }
  // named after the run, so that the run can drop what a killed test file left behind
  const name = `${testDatabasePrefix(runTemplate)}${randomBytes(6).toString('hex')}`
  const template = migrated ? runTemplate : undefined
  await adminQuery(serverUrl, `create database ${name}${template ? ` template ${template}` : ''}`)
  const url = withDatabase(serverUrl, name)
  // tests seed big tables through this pool: no query timeout
  const pool = createPool({ connectionString: url, max: 10, queryTimeoutMs: 0 })
  if (migrated && !template) await migrate(pool)
  return {
    url,
    pool,
    drop: async () => {
      await pool.end().catch(() => {})
      await adminQuery(serverUrl, `drop database if exists ${name} with (force)`)
    }
  }
}

const TEMPLATE_NAME = /^herald_template_[0-9a-f]+$/

function testDatabasePrefix (template: string | undefined): string {
  return template ? `herald_test_${template.slice('herald_template_'.length)}_` : 'herald_test_'
}

/**
 * A migrated database for createTestDatabase() to copy (test/run.ts makes one per run). Nobody
 * may connect to it, because Postgres copies a template only while no session is connected to
 * it, and that also keeps autovacuum away. `drop()` removes it and every database of this run a
 * test file left behind (a file killed mid-run never runs its `after`).
 */
export async function createTemplateDatabase (serverUrl: string): Promise<{ name: string, drop: () => Promise<void> }> {
  const name = `herald_template_${randomBytes(6).toString('hex')}`
  await adminQuery(serverUrl, `create database ${name}`)
  const drop = async (): Promise<void> => {
    const admin = new pg.Client({ connectionString: serverUrl })
    await admin.connect()
    try {
      const { rows } = await admin.query<{ datname: string }>(
        "select datname from pg_database where starts_with(datname, $1) and datname ~ '^[a-z0-9_]+$'",
        [testDatabasePrefix(name)])
      for (const { datname } of rows) await admin.query(`drop database if exists ${datname} with (force)`)
      await admin.query(`drop database if exists ${name}`)
    } finally {
      await admin.end()
    }
  }
  try {
    const pool = createPool({ connectionString: withDatabase(serverUrl, name), max: 1, queryTimeoutMs: 0 })
    try {
      await migrate(pool)
    } finally {
      await pool.end()
    }
    await adminQuery(serverUrl, `alter database ${name} with allow_connections false`)
  } catch (err) {
    await drop().catch(() => {})
    throw err
  }
  return { name, drop }
}
