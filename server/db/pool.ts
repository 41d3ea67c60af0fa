import { createHash } from 'node:crypto'
import pg from 'pg'

// bigint columns (seq) come back as strings by default; ours stay far below 2^53
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value))

/** Longest any single query may take; Herald's slowest take well under a second. Migrations are exempt. */
export const QUERY_TIMEOUT_MS = 5_000

export interface PoolOptions {
  connectionString: string
  max?: number
  applicationName?: string
  /** 0: none (for tools that seed or migrate big tables) */
  queryTimeoutMs?: number
}

/**
 * A client that has Postgres parse and plan each parameterised statement once per connection
 * (a named prepared statement, named after its text) instead of on every execution: half the
 * Postgres CPU of a device's connect (claim + subscription read: 533-630 → 263 µs, measured).
 * Statements without parameters, such as `begin; select …`, stay simple queries. Statement
 * texts are fixed in the code or put together from a few fixed pieces (the admin log's filters),
 * so the number prepared on a connection stays bounded.
 */
class PreparingClient extends pg.Client {
  override query (...args: unknown[]): never {
    const [config, values] = args
    if (typeof config === 'string' && Array.isArray(values)) {
      args = [{ name: statementName(config), text: config, values }, ...args.slice(2)]
    } else if (isPlainQueryConfig(config) && config.name === undefined && Array.isArray(config.values)) {
      args = [{ ...config, name: statementName(config.text) }, ...args.slice(1)]
    }
    return (super.query as (...a: unknown[]) => never)(...args)
  }
}

/** A `{ text, values }` object, not a submittable (a cursor or stream, which must be passed on as is). */
function isPlainQueryConfig (config: unknown): config is pg.QueryConfig {
  return typeof config === 'object' && config !== null && typeof (config as { text?: unknown }).text === 'string' &&
    typeof (config as { submit?: unknown }).submit !== 'function'
}

const statementNames = new Map<string, string>()
function statementName (text: string): string {
  let name = statementNames.get(text)
  if (name === undefined) {
    name = `h_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`
    statementNames.set(text, name)
  }
  return name
}

export function createPool ({ connectionString, max = 10, applicationName = 'herald', queryTimeoutMs = QUERY_TIMEOUT_MS }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    Client: PreparingClient,
    connectionString,
    max,
    application_name: applicationName,
    // fail fast while the database is down, so sends answer 503 instead of hanging
    connectionTimeoutMillis: 5_000,
    // a connection whose network path died answers nothing, ever: give up on it instead of
    // holding a send until TCP notices (minutes); callers then destroy that connection
    query_timeout: queryTimeoutMs === 0 ? undefined : queryTimeoutMs,
    idleTimeoutMillis: 30_000
  })
  // an idle client losing its connection (database restart) must not crash the process
  pool.on('error', () => {})
  return pool
}

export type { Pool, PoolClient } from 'pg'

/**
 * Runs `work` in a transaction on one connection. On any failure the connection is destroyed,
 * not returned to the pool: after a timeout its state is unknown. `first`, a statement without
 * parameters, is sent together with `begin`, saving a round trip.
 */
export async function inTransaction<T> (pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, first?: string): Promise<T> {
  const client = await pool.connect()
  let failed: Error | undefined
  try {
    await client.query(first === undefined ? 'begin' : `begin; ${first}`)
    const result = await work(client)
    await client.query('commit')
    return result
  } catch (err) {
    failed = err as Error
    // the server answered with an error: roll back and keep the connection. Otherwise (timeout,
    // broken connection) a rollback would wait just as long; destroying the connection ends the transaction.
    if ((err as { code?: unknown }).code !== undefined && typeof (err as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code)) {
      await client.query('rollback').catch(() => {})
      failed = undefined
    }
    throw err
  } finally {
    client.release(failed)
  }
}
