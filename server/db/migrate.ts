import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { existsSync } from 'node:fs'
import type pg from 'pg'

// Any constant works; it only has to be the same in every Herald process.
const MIGRATION_LOCK = 0x4865_7261 // "Hera"
const MIGRATION_TIMEOUT_MS = 24 * 3600_000

export interface MigrationResult {
  applied: string[]
}

/** The folder of numbered, forward-only SQL files: `0001_name.sql`, `0002_name.sql`, … */
function migrationsDir (): string {
  // this file runs from server/db (tsx) or from dist/server/db (compiled)
  const here = path.dirname(fileURLToPath(import.meta.url))
  return [path.resolve(here, '../../migrations'), path.resolve(here, '../../../migrations')].find(existsSync)!
}

/**
 * Applies every migration not yet recorded, each in its own transaction, under a
 * transaction-level advisory lock so that two processes starting at once apply each file once.
 */
export async function migrate (pool: pg.Pool): Promise<MigrationResult> {
  const dir = migrationsDir()
  const files = (await readdir(dir)).filter(f => /^\d{4}_[\w-]+\.sql$/.test(f)).sort()
  const client = await pool.connect()
  const applied: string[] = []
  try {
    // under the lock too: concurrent "create table if not exists" fail with 23505 or 42710
    await client.query('begin')
    try {
      await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
      await client.query(`create table if not exists schema_migrations (
        name text primary key,
        applied_at timestamptz not null default now()
      )`)
      await client.query('commit')
    } catch (err) {
      await client.query('rollback').catch(() => {})
      throw err
    }
    for (const file of files) {
      await client.query('begin')
      try {
        await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
        const done = await client.query('select 1 from schema_migrations where name = $1', [file])
        if (done.rowCount === 0) {
          // index builds on big tables may take long: no query timeout here
          const text = await readFile(path.join(dir, file), 'utf8')
          await client.query({ text, query_timeout: MIGRATION_TIMEOUT_MS } as never)
          await client.query('insert into schema_migrations (name) values ($1)', [file])
          applied.push(file)
        }
        await client.query('commit')
      } catch (err) {
        await client.query('rollback')
        throw Object.assign(new Error(`migration ${file} failed: ${(err as Error).message}`), { cause: err })
      }
    }
  } finally {
    client.release()
  }
  return { applied }
}

/** Names of the migration files shipped with this build, for readiness checks. */
export async function expectedMigrations (): Promise<string[]> {
  return (await readdir(migrationsDir())).filter(f => /^\d{4}_[\w-]+\.sql$/.test(f)).sort()
}
