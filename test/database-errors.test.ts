// server/db/errors.ts against real failures, each produced for real: a refused port, a name that
// does not resolve, a server that never answers, an exhausted pool, a query timeout, a terminated
// backend, a socket closed or reset mid-query, a role over its connection limit. Each must read as
// "database unavailable" (a 503, a retry); a value Postgres refuses or a bad statement must not.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { isDatabaseUnavailable, isDataException, isPostgresError } from '../server/db/errors.js'
import { inTransaction } from '../server/db/pool.js'
import { testServerUrl } from './helpers/db.js'

const url = testServerUrl()
const server = new URL(url)
const pools: pg.Pool[] = []
let admin: pg.Client

before(async () => {
  admin = new pg.Client({ connectionString: url })
  await admin.connect()
})
after(async () => {
  await Promise.all(pools.map(p => p.end().catch(() => {})))
  await admin.end()
})

/** A pool as Herald's (db/pool.ts), with the timeouts short enough for a test. */
function poolTo (connectionString: string, options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString, connectionTimeoutMillis: 1_000, ...options })
  pool.on('error', () => {})
  pools.push(pool)
  return pool
}

function withHostPort (host: string, port: number | string, user?: string): string {
  const u = new URL(url)
  u.hostname = host
  u.port = String(port)
  if (user !== undefined) u.username = user
  return u.toString()
}

async function failure (what: Promise<unknown>): Promise<unknown> {
  try {
    await what
  } catch (err) {
    return err
  }
  assert.fail('expected the call to fail')
}

function assertUnavailable (err: unknown): void {
  const code = (err as { code?: string }).code
  assert.equal(isDatabaseUnavailable(err), true, `unavailable: ${String(err)} (code ${code})`)
  assert.equal(isDataException(err), false)
}

/** A TCP server on 127.0.0.1 that forwards to Postgres until told to close its sockets. */
async function proxyToPostgres (): Promise<{ port: number, sockets: net.Socket[], close: () => void }> {
  const sockets: net.Socket[] = []
  const proxy = net.createServer(client => {
    const upstream = net.connect(Number(server.port || 5432), server.hostname)
    for (const s of [client, upstream]) { s.on('error', () => {}); sockets.push(s) }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  return { port: (proxy.address() as net.AddressInfo).port, sockets, close: () => proxy.close() }
}

// a query that runs until it is cut, marked so that pg_stat_activity finds this file's and no other's
const LONG_QUERY = `select pg_sleep(10) -- ${randomBytes(6).toString('hex')}`

/** The backend running LONG_QUERY, once Postgres shows it running. */
async function longQueryBackend (): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await admin.query<{ pid: number }>(
      "select pid from pg_stat_activity where query = $1 and state = 'active'", [LONG_QUERY])
    if (rows.length > 0) return rows[0].pid
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error('the query never became active')
}

/** The error of LONG_QUERY on a connection from `pool` when `cut` is called while it runs. */
async function cutDuringQuery (pool: pg.Pool, cut: (pid: number) => Promise<unknown> | void): Promise<unknown> {
  const client = await pool.connect()
  client.on('error', () => {})
  try {
    const running = failure(client.query(LONG_QUERY))
    await cut(await longQueryBackend())
    return await running
  } finally {
    client.release(true)
  }
}

test('a refused port (ECONNREFUSED) is unavailable', async () => {
  const refused = net.createServer()
  await new Promise<void>(resolve => refused.listen(0, '127.0.0.1', resolve))
  const port = (refused.address() as net.AddressInfo).port
  await new Promise<void>(resolve => refused.close(() => resolve()))
  const err = await failure(poolTo(withHostPort('127.0.0.1', port)).query('select 1'))
  assert.equal((err as { code?: string }).code, 'ECONNREFUSED')
  assertUnavailable(err)
})

test('a host name that does not resolve is unavailable', async () => {
  const err = await failure(poolTo(withHostPort('herald-test.invalid', 5432)).query('select 1'))
  assert.match(String((err as { code?: string }).code), /^(ENOTFOUND|EAI_AGAIN)$/)
  assertUnavailable(err)
})

test('a server that accepts and never answers: the connect timeout is unavailable', async () => {
  const silent = net.createServer(socket => socket.on('error', () => {}))
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  try {
    const port = (silent.address() as net.AddressInfo).port
    const pool = poolTo(withHostPort('127.0.0.1', port), { connectionTimeoutMillis: 300 })
    const err = await failure(pool.query('select 1'))
    assert.equal((err as Error).message, 'Connection terminated due to connection timeout')
    assertUnavailable(err)
  } finally {
    silent.close()
  }
})

test('an exhausted pool (no connection came free in time) is unavailable', async () => {
  const pool = poolTo(url, { max: 1, connectionTimeoutMillis: 200 })
  const held = await pool.connect()
  try {
    const err = await failure(pool.query('select 1'))
    assert.equal((err as Error).message, 'timeout exceeded when trying to connect')
    assertUnavailable(err)
  } finally {
    held.release()
  }
})

test('a query that gets no answer within query_timeout is unavailable', async () => {
  const err = await failure(poolTo(url, { query_timeout: 100 }).query('select pg_sleep(5)'))
  assert.equal((err as Error).message, 'Query read timeout')
  assertUnavailable(err)
})

test('a backend terminated mid-query (57P01), and the next query on its connection, are unavailable', async () => {
  const client = await poolTo(url).connect()
  client.on('error', () => {})
  try {
    const running = failure(client.query(LONG_QUERY))
    await admin.query('select pg_terminate_backend($1)', [await longQueryBackend()])
    const err = await running
    assert.equal((err as { code?: string }).code, '57P01')
    assert.ok(isPostgresError(err))
    assertUnavailable(err)
    assertUnavailable(await failure(client.query('select 1')))
  } finally {
    client.release(true)
  }
})

test('a socket closed mid-query, and one reset mid-query (ECONNRESET), are unavailable', async () => {
  const proxy = await proxyToPostgres()
  try {
    const pool = poolTo(withHostPort('127.0.0.1', proxy.port))
    const closed = await cutDuringQuery(pool, () => { for (const s of proxy.sockets.splice(0)) s.destroy() })
    assert.equal((closed as Error).message, 'Connection terminated unexpectedly')
    assertUnavailable(closed)
    const reset = await cutDuringQuery(pool, () => {
      // the proxy's socket facing the pg client, reset: the RST reaches the client
      const [facingClient, upstream] = proxy.sockets.splice(0)
      facingClient.resetAndDestroy()
      upstream.destroy()
    })
    assert.equal((reset as { code?: string }).code, 'ECONNRESET')
    assertUnavailable(reset)
  } finally {
    proxy.close()
  }
})

test('a role over its connection limit (53300) is unavailable', async () => {
  const role = `herald_test_${randomBytes(4).toString('hex')}`
  await admin.query(`create role ${role} login connection limit 0`)
  try {
    const err = await failure(poolTo(withHostPort(server.hostname, server.port || 5432, role)).query('select 1'))
    assert.equal((err as { code?: string }).code, '53300')
    assertUnavailable(err)
  } finally {
    await admin.query(`drop role ${role}`)
  }
})

test('a value Postgres refuses is a data exception; it and a bad statement are not unavailability', async () => {
  const pool = poolTo(url)
  const refused = await failure(pool.query("select 'x'::int"))
  assert.equal((refused as { code?: string }).code, '22P02')
  assert.equal(isDataException(refused), true)
  assert.equal(isDatabaseUnavailable(refused), false)
  const zero = await failure(pool.query('select convert_from($1, $2)', [Buffer.from([0]), 'UTF8']))
  assert.equal(isDataException(zero), true, String(zero))
  for (const sql of ['select from nowhere where', 'select * from herald_no_such_table']) {
    const err = await failure(pool.query(sql))
    assert.ok(isPostgresError(err))
    assert.equal(isDatabaseUnavailable(err), false, sql)
    assert.equal(isDataException(err), false, sql)
  }
  // not a database error at all
  assert.equal(isDatabaseUnavailable(new Error('Connection terminated unexpectedly!')), false)
  assert.equal(isDatabaseUnavailable(new TypeError('x is not a function')), false)
  assert.equal(isDatabaseUnavailable(undefined), false)
})

test('inTransaction: an error Postgres answers rolls back and keeps the connection; a timeout drops it', async () => {
  const pool = poolTo(url, { max: 1, query_timeout: 300 })
  const pidOf = async (): Promise<number> =>
    (await pool.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid
  const first = await pidOf()
  await failure(inTransaction(pool, c => c.query("select 'x'::int")))
  // (a transaction left aborted on it would refuse this query with 25P02)
  assert.equal(await pidOf(), first, 'the same connection, rolled back, serves the next query')
  const timeout = await failure(inTransaction(pool, c => c.query('select pg_sleep(5)')))
  assertUnavailable(timeout)
  assert.notEqual(await pidOf(), first, 'the connection whose state is unknown was destroyed')
})
