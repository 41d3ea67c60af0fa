import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorRequestHandler } from 'express'
import type { Logger } from '../log.js'

/**
 * The catalogue of errors a client can get. `code` is stable: clients branch on it. Each
 * becomes an RFC 9457 application/problem+json body with `type` pointing at the code.
 */
export const PROBLEMS = {
  'invalid-json': { status: 400, title: 'Request body is not valid JSON' },
  'invalid-request': { status: 400, title: 'Request is invalid' },
  unauthorized: { status: 401, title: 'Missing or invalid credentials' },
  forbidden: { status: 403, title: 'Not allowed' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'unsupported-media-type': { status: 415, title: 'Request body must be application/json' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key was used for a different request' },
  'token-signing-unavailable': { status: 501, title: 'This server cannot sign device tokens' },
  'too-many-requests': { status: 429, title: 'Too many requests' },
  'database-unavailable': { status: 503, title: 'Database unavailable' },
  'shutting-down': { status: 503, title: 'Server is shutting down' },
  internal: { status: 500, title: 'Internal server error' }
} as const

export type ProblemCode = keyof typeof PROBLEMS

export const PROBLEM_TYPE_BASE = 'https://herald.dev/problems/'

export class ProblemError extends Error {
  constructor (readonly code: ProblemCode, readonly detail: string, readonly extra: Record<string, unknown> = {}) {
    super(detail)
  }

  get status (): number {
    return PROBLEMS[this.code].status
  }
}

/** The answer to a send while this server shuts down: 503 with Retry-After, set on `res`. */
export function shuttingDown (res: ServerResponse): ProblemError {
  res.setHeader('Retry-After', '5')
  return new ProblemError('shutting-down', 'this server is shutting down; retry on another instance or in a few seconds')
}

export function sendProblem (res: ServerResponse, code: ProblemCode, detail: string, extra: Record<string, unknown> = {}): void {
  const { status, title } = PROBLEMS[code]
  sendJson(res, status, { type: PROBLEM_TYPE_BASE + code, code, title, status, detail, ...extra }, 'application/problem+json')
}

/** A JSON answer, written with Node's own response API so that routes outside express can use it too. */
export function sendJson (res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body)
  res.statusCode = status
  res.setHeader('Content-Type', `${type}; charset=utf-8`)
  // a browser must not guess another type from the content (a message's text could look like HTML)
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.end(text)
}

// Postgres SQLSTATEs of a server that is going away or cannot be reached
const ADMIN_SHUTDOWN = '57P01'
const CRASH_SHUTDOWN = '57P02'
const CANNOT_CONNECT_NOW = '57P03'
const CONNECTION_EXCEPTION = '08000'
const CONNECTION_DOES_NOT_EXIST = '08003'
const CONNECTION_FAILURE = '08006'
const UNABLE_TO_ESTABLISH_CONNECTION = '08001'
const SERVER_REJECTED_CONNECTION = '08004'
// with node-postgres' own network failures
const DATABASE_DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE',
  ADMIN_SHUTDOWN, CRASH_SHUTDOWN, CANNOT_CONNECT_NOW, CONNECTION_EXCEPTION, CONNECTION_DOES_NOT_EXIST,
  CONNECTION_FAILURE, UNABLE_TO_ESTABLISH_CONNECTION, SERVER_REJECTED_CONNECTION])

// SQLSTATE class 22, data exception: Postgres refused a value (U+0000 in text, a malformed
// jsonb string, a number out of range); the request that carried it is at fault, not the server
const DATA_EXCEPTION_CLASS = '22'

export function isDataException (err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && code.length === 5 && code.startsWith(DATA_EXCEPTION_CLASS)
}

export function isDatabaseUnavailable (err: unknown): boolean {
  const e = err as { code?: string, message?: string } | undefined
  if (!e) return false
  if (e.code && DATABASE_DOWN_CODES.has(e.code)) return true
  return /timeout exceeded when trying to connect|Query read timeout|Connection terminated|connect ECONNREFUSED|Client has encountered a connection error/.test(e.message ?? '')
}

/** Turns anything thrown in a route into a problem response; unexpected errors are logged, never shown. */
export function sendError (log: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) return
  // refused before its body was read to the end (413, 401…): close the connection after the
  // answer instead of reading the rest of a body nobody wants (Node does so on Connection: close)
  if (!req.complete) res.setHeader('Connection', 'close')
  if (err instanceof ProblemError) return sendProblem(res, err.code, err.detail, err.extra)
  const path = (req.url ?? '').split('?')[0]
  // express' router could not decode a route parameter (requestTarget() refuses these first)
  if (err instanceof URIError) {
    return sendProblem(res, 'invalid-request', `path: ${err.message}; a path must be percent-encoded UTF-8`,
      { errors: [{ field: 'path', message: 'is not percent-encoded UTF-8' }] })
  }
  if (isDataException(err)) {
    log.warn({ err: (err as Error).message, method: req.method, path }, 'the database refused a value of a request')
    const detail = `the database refused a value of this request: ${(err as Error).message}`
    return sendProblem(res, 'invalid-request', detail)
  }
  if (isDatabaseUnavailable(err)) {
    log.warn({ err: (err as Error).message, path }, 'database unavailable')
    res.setHeader('Retry-After', '5')
    return sendProblem(res, 'database-unavailable', 'the database is unreachable; the request was not completed. Retry later (a send with an Idempotency-Key is safe to retry)')
  }
  log.error({ err, method: req.method, path }, 'unexpected error')
  sendProblem(res, 'internal', 'an unexpected error occurred; it was logged')
}

/** sendError as express' error handler. */
export function problemHandler (log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => sendError(log, req, res, err)
}
