import type { Pool } from '../db/pool.js'
import type { ApiKey } from '../wire.js'

/** A stored API key: what GET /v1/api-keys lists (wire.ts ApiKey), never the key's hash. */
export type ApiKeyRow = ApiKey

const COLUMNS = 'id, name, prefix, created_at as "createdAt", last_used_at as "lastUsedAt", revoked_at as "revokedAt"'

export async function insertApiKey (pool: Pool, name: string, prefix: string, keyHash: string): Promise<ApiKeyRow> {
  const { rows } = await pool.query<ApiKeyRow>(
    `insert into api_keys (name, prefix, key_hash) values ($1, $2, $3) returning ${COLUMNS}`, [name, prefix, keyHash])
  return rows[0]
}

/** Stores a key given from outside (API_KEY) once; a second start with the same key is a no-op. */
export async function ensureApiKey (pool: Pool, name: string, prefix: string, keyHash: string): Promise<void> {
  await pool.query(
    'insert into api_keys (name, prefix, key_hash) values ($1, $2, $3) on conflict (key_hash) do nothing',
    [name, prefix, keyHash])
}

export async function findActiveApiKeyByHash (pool: Pool, keyHash: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await pool.query<ApiKeyRow>(
    `select ${COLUMNS} from api_keys where key_hash = $1 and revoked_at is null`, [keyHash])
  return rows[0]
}

export async function listApiKeys (pool: Pool): Promise<ApiKeyRow[]> {
  const { rows } = await pool.query<ApiKeyRow>(`select ${COLUMNS} from api_keys order by created_at desc`)
  return rows
}

export async function countApiKeys (pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from api_keys')
  return rows[0].n
}

/** Returns the revoked key, or undefined when there is no such key. Revoking twice is harmless. */
export async function revokeApiKey (pool: Pool, id: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await pool.query<ApiKeyRow>(
    `update api_keys set revoked_at = coalesce(revoked_at, now()) where id = $1 returning ${COLUMNS}`, [id])
  return rows[0]
}

export async function touchApiKeys (pool: Pool, ids: string[]): Promise<void> {
  if (ids.length === 0) return
  await pool.query('update api_keys set last_used_at = now() where id = any($1::uuid[])', [ids])
}
