// What a failed database call means, told by name: Postgres' SQLSTATEs (appendix A of its manual)
// on the errors the server sends, Node's system error codes on network failures. Only
// node-postgres' own errors carry neither, and are told by their exact text (PG_CONNECTION_LOST).
import pg from 'pg'

// SQLSTATE class 08, connection exception: 08000, 08001 (unable to establish), 08003 (does not
// exist), 08004 (rejected), 08006 (failure), 08007 (transaction resolution unknown). Its 08P01,
// protocol violation, is a bug on our side, not an outage.
const CONNECTION_EXCEPTION_CLASS = '08'
const PROTOCOL_VIOLATION = '08P01'
// class 57, operator intervention: the server is shutting down, restarting, or not ready yet
const ADMIN_SHUTDOWN = '57P01'
const CRASH_SHUTDOWN = '57P02'
const CANNOT_CONNECT_NOW = '57P03'
const IDLE_SESSION_TIMEOUT = '57P05'
// class 53: no connection to spare now (max_connections, or the role's or database's limit)
const TOO_MANY_CONNECTIONS = '53300'
const SERVER_GOING_AWAY = new Set([ADMIN_SHUTDOWN, CRASH_SHUTDOWN, CANNOT_CONNECT_NOW, IDLE_SESSION_TIMEOUT,
  TOO_MANY_CONNECTIONS])

// SQLSTATE class 22, data exception: Postgres refused a value (U+0000 in text, a malformed jsonb
// string, a number out of range); the request that carried it is at fault, not the server
const DATA_EXCEPTION_CLASS = '22'

// Node's codes for a network path to the database that is down or broke (refused, reset, no route,
// no DNS answer)
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND',
  'EAI_AGAIN', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN'])

// node-postgres' own failures are plain Errors with no code, class or flag (pg 8.23.1, pg-pool
// 3.14.0: lib/client.js, index.js): their text is all that tells them apart, so it is matched
// exactly, never as a pattern. Read again when upgrading pg.
const PG_CONNECTION_LOST = new Set([
  // pg-pool: no pooled connection came free within connectionTimeoutMillis
  'timeout exceeded when trying to connect',
  // pg-pool: a new connection was not established within connectionTimeoutMillis (its cause says why)
  'Connection terminated due to connection timeout',
  // pg: no answer within query_timeout (a network path that died without a reset)
  'Query read timeout',
  // pg: the server or the network closed the socket
  'Connection terminated unexpectedly',
  // pg: the connection was closed on our side (shutdown, a connection the pool removed) with queries waiting
  'Connection terminated',
  // pg: a query on a connection that already failed
  'Client has encountered a connection error and is not queryable'
])

/** An error Postgres sent in answer to a statement (it has a SQLSTATE `code`); the connection answered. */
export function isPostgresError (err: unknown): err is pg.DatabaseError {
  return err instanceof pg.DatabaseError
}

/** Postgres refused a value of the statement (SQLSTATE class 22): the request's fault, a 400. */
export function isDataException (err: unknown): boolean {
  return isPostgresError(err) && err.code?.slice(0, 2) === DATA_EXCEPTION_CLASS
}

/**
 * The database could not be reached or went away during the call: nothing is known to have been
 * done, and the same call may succeed later (a 503 with Retry-After, a CONNACK 3, a retry).
 */
export function isDatabaseUnavailable (err: unknown): boolean {
  return unavailable(err, 0)
}

function unavailable (err: unknown, depth: number): boolean {
  if (isPostgresError(err)) {
    const code = err.code ?? ''
    if (code.slice(0, 2) === CONNECTION_EXCEPTION_CLASS) return code !== PROTOCOL_VIOLATION
    return SERVER_GOING_AWAY.has(code)
  }
  if (!(err instanceof Error) || depth > 3) return false
  const code = (err as NodeJS.ErrnoException).code
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true
  if (code === undefined && PG_CONNECTION_LOST.has(err.message)) return true
  // Node's connect to several addresses (happy eyeballs) fails with all of their errors
  if (err instanceof AggregateError && err.errors.some(e => unavailable(e, depth + 1))) return true
  return err.cause !== undefined && unavailable(err.cause, depth + 1)
}
