import type { Pool } from '../db/pool.js'

/**
 * Returns the stored value of `key`, storing `generate()` first if there is none. Two
 * processes starting at once agree on one value: the insert that loses reads the winner's.
 */
export async function getOrCreateSetting (
  pool: Pool,
  key: string,
  generate: () => string | Promise<string>
): Promise<{ value: string, created: boolean }> {
  const existing = await pool.query<{ value: string }>('select value from settings where key = $1', [key])
  if (existing.rows[0]) return { value: existing.rows[0].value, created: false }
  const value = await generate()
  const inserted = await pool.query<{ value: string }>(
    'insert into settings (key, value) values ($1, $2) on conflict (key) do nothing returning value', [key, value])
  if (inserted.rows[0]) return { value, created: true }
  const winner = await pool.query<{ value: string }>('select value from settings where key = $1', [key])
  return { value: winner.rows[0].value, created: false }
}
