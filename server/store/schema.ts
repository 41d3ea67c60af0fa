import type { Pool } from '../db/pool.js'

/** Names of the migrations applied to this database (db/migrate.ts writes them). */
export async function appliedMigrations (pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>('select name from schema_migrations')
  return rows.map(r => r.name)
}
