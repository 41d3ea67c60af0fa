import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorRequestHandler } from 'express'
import type { Logger } from '../log.js'
import { PROBLEMS, PROBLEM_TYPE_BASE, ProblemError } from '../errors.js'
import { isDatabaseUnavailable, isDataException } from '../db/errors.js'

/**
 * Problems on the wire: a ProblemError (server/errors.ts) becomes application/problem+json with
 * its headers; anything unexpected is a logged 500 that shows nothing of the error.
 */
export function sendProblem (res: ServerResponse, problem: ProblemError): void {
  const { status, title } = PROBLEMS[problem.code]
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value)
  const body = {
    type: PROBLEM_TYPE_BASE + problem.code,
    code: problem.code,
    title,
    status,
    detail: problem.detail,
    ...problem.extra
  }
  sendJson(res, status, body, 'application/problem+json')
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

/** Turns anything thrown in a route into a problem response; unexpected errors are logged, never shown. */
export function sendError (log: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) return
  // refused before its body was read to the end (413, 401…): close the connection after the
  // answer instead of reading the rest of a body nobody wants (Node does so on Connection: close)
  if (!req.complete) res.setHeader('Connection', 'close')
  if (err instanceof ProblemError) return sendProblem(res, err)
  const path = (req.url ?? '').split('?')[0]
  // express' router could not decode a route parameter (requestTarget() refuses these first)
  if (err instanceof URIError) {
    return sendProblem(res, new ProblemError('invalid-request',
      `path: ${err.message}; a path must be percent-encoded UTF-8`,
      { errors: [{ field: 'path', message: 'is not percent-encoded UTF-8' }] }))
  }
  if (isDataException(err)) {
    log.warn({ err: (err as Error).message, method: req.method, path }, 'the database refused a value of a request')
    const detail = `the database refused a value of this request: ${(err as Error).message}`
    return sendProblem(res, new ProblemError('invalid-request', detail))
  }
  if (isDatabaseUnavailable(err)) {
    log.warn({ err: (err as Error).message, path }, 'database unavailable')
    return sendProblem(res, new ProblemError('database-unavailable',
      'the database is unreachable; the request was not completed. ' +
      'Retry later (a send with an Idempotency-Key is safe to retry)', {}, { 'Retry-After': '5' }))
  }
  log.error({ err, method: req.method, path }, 'unexpected error')
  sendProblem(res, new ProblemError('internal', 'an unexpected error occurred; it was logged'))
}

/** sendError as express' error handler. */
export function problemHandler (log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => sendError(log, req, res, err)
}
