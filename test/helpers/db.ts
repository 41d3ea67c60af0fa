import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createPool } from '../../server/db/pool.js'
import { migrate } from '../../server/db/migrate.js'

/** The Postgres the tests run against: set by test/run.ts (embedded) or by the caller. */
export function testServerUrl (): string {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`, which starts an embedded Postgres')
  return url
}

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

/**
 * A fresh, empty database for one test file (optionally migrated), so files run in parallel
 * without sharing state. `drop()` removes it; a failed run leaves nothing behind either way
 * because names are random and `drop` runs in `after`.
 */
export async function createTestDatabase ({ migrated = true } = {}): Promise<TestDatabase> {
  const serverUrl = testServerUrl()
  const name = `herald_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = withDatabase(serverUrl, name)
  // tests seed big tables through this pool: no query timeout
  const pool = createPool({ connectionString: url, max: 10, queryTimeoutMs: 0 })
  if (migrated) await migrate(pool)
  return {
    url,
    pool,
    drop: async () => {
      await pool.end().catch(() => {})
      const c = new pg.Client({ connectionString: serverUrl })
      await c.connect()
      try {
        await c.query(`drop database if exists ${name} with (force)`)
      } finally {
        await c.end()
      }
    }
  }
}
