import type { Pool } from '../db/pool.js'

export interface AdminSessionRow {
  idHash: string
  createdAt: Date
  lastSeenAt: Date
  expiresAt: Date
}

const COLUMNS = 'id_hash as "idHash", created_at as "createdAt", ' +
  'last_seen_at as "lastSeenAt", expires_at as "expiresAt"'

export async function insertAdminSession (
  pool: Pool,
  idHash: string,
  idleSeconds: number,
  meta: { ip?: string, userAgent?: string }
): Promise<AdminSessionRow> {
  const { rows } = await pool.query<AdminSessionRow>(
    `insert into admin_sessions (id_hash, expires_at, ip, user_agent)
     values ($1, now() + make_interval(secs => $2), $3, $4) returning ${COLUMNS}`,
    [idHash, idleSeconds, meta.ip ?? null, meta.userAgent?.slice(0, 300) ?? null])
  return rows[0]
}

/**
 * The live session with this id hash, or undefined. When it was last touched more than
 * `touchAfterSeconds` ago its idle expiry moves forward (capped by the absolute lifetime), so
 * an active admin writes at most one row a minute.
 */
export async function findAdminSession (
  pool: Pool,
  idHash: string,
  idleSeconds: number,
  maxAgeSeconds: number,
  touchAfterSeconds: number
): Promise<AdminSessionRow | undefined> {
  const { rows } = await pool.query<AdminSessionRow>(
    `with found as (
       select id_hash from admin_sessions where id_hash = $1 and expires_at > now()
     ), touched as (
       update admin_sessions s
          set last_seen_at = now(),
              expires_at = least(now() + make_interval(secs => $2), s.created_at + make_interval(secs => $3))
        where s.id_hash = (select id_hash from found) and s.last_seen_at < now() - make_interval(secs => $4)
        returning ${COLUMNS}
     )
     select * from touched
     union all
     select ${COLUMNS} from admin_sessions
      where id_hash = (select id_hash from found) and not exists (select 1 from touched)`,
    [idHash, idleSeconds, maxAgeSeconds, touchAfterSeconds])
  return rows[0]
}

/** Which of these sessions are still live (for long-lived event streams). */
export async function liveAdminSessions (pool: Pool, idHashes: string[]): Promise<Set<string>> {
  if (idHashes.length === 0) return new Set()
  const { rows } = await pool.query<{ idHash: string }>(
    'select id_hash as "idHash" from admin_sessions where id_hash = any($1::text[]) and expires_at > now()', [idHashes])
  return new Set(rows.map(r => r.idHash))
}

export async function deleteAdminSession (pool: Pool, idHash: string): Promise<void> {
  await pool.query('delete from admin_sessions where id_hash = $1', [idHash])
}

export async function deleteExpiredAdminSessions (pool: Pool): Promise<number> {
  const { rowCount } = await pool.query('delete from admin_sessions where expires_at <= now()')
  return rowCount ?? 0
}
