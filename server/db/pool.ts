import pg from 'pg'
import { isPostgresError } from './errors.js'

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
  /**
   * Whether statements named where they are issued (`{ name, text, values }`) become prepared
   * statements (default true). False behind a pooler in transaction mode (PgBouncer without
   * `max_prepared_statements`): the next statement may run on a server connection that never saw
   * the PREPARE. Off, the same statements run unnamed, parsed on every execution.
   */
  preparedStatements?: boolean
}

/**
 * The hot statements are named at their call site (`name: 'herald_claim_device'`), as
 * graphile-worker does (src/sql/completeJobs.ts): Postgres then parses and plans each once per
 * connection instead of on every execution, which halved the Postgres CPU of a device's connect
 * (claim + subscription read: 533-630 → 263 µs, measured). Everything else runs unnamed. A name
 * stands for one text: pg refuses a name reused for another text on the same connection.
 *
 * With prepared statements off, this client drops the names, so call sites need not know.
 */
class UnpreparedClient extends pg.Client {
  override query (...args: unknown[]): never {
    const [config] = args
    if (isPlainQueryConfig(config) && config.name !== undefined) {
      const { name: _unused, ...unnamed } = config
      args = [unnamed, ...args.slice(1)]
    }
    return (super.query as (...a: unknown[]) => never)(...args)
  }
}

/** A `{ text, values }` object, not a submittable (a cursor or stream, which must be passed on as is). */
function isPlainQueryConfig (config: unknown): config is pg.QueryConfig {
  return typeof config === 'object' && config !== null && typeof (config as { text?: unknown }).text === 'string' &&
    typeof (config as { submit?: unknown }).submit !== 'function'
}

export function createPool ({
  connectionString, max = 10, applicationName = 'herald', queryTimeoutMs = QUERY_TIMEOUT_MS, preparedStatements = true
}: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    Client: preparedStatements ? pg.Client : UnpreparedClient,
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
  // Nor may a client checked out and between two queries: pg emits 'error' on the client then,
  // and the pool listens only while the client is idle. Seen in a database outage: pg-pool handed
  // out an idle client whose socket had just closed, and the unheard 'error' ended the process.
  // The query that follows fails with its own error, which its caller handles.
  pool.on('connect', client => { client.on('error', () => {}) })
  return pool
}

export type { Pool, PoolClient } from 'pg'

/**
 * Runs `work` in a transaction on one connection. On any failure the connection is destroyed,
 * not returned to the pool: after a timeout its state is unknown. `first`, a statement without
 * parameters, is sent together with `begin`, saving a round trip.
 */
export async function inTransaction<T> (pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>,
  first?: string): Promise<T> {
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
    if (isPostgresError(err)) {
      await client.query('rollback').catch(() => {})
      failed = undefined
    }
    throw err
  } finally {
    client.release(failed)
  }
}
