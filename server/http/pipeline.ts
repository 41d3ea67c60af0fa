import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RequestHandler } from 'express'
import { shuttingDown } from '../errors.js'
import type { ApiKeyIdentity } from '../auth/apiKeyCache.js'
import { authenticateApiKey, type AuthDeps } from './auth.js'
import { readJsonBody, requireJsonContent } from './body.js'

/** One request on its way through the steps: what the steps found out so far. */
export interface Exchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  apiKey?: ApiKeyIdentity
  body?: unknown
}

/** A step either returns (the request goes on) or throws a ProblemError (it is answered with it). */
export type Step = (exchange: Exchange) => void | Promise<void>

/**
 * The steps a request goes through before its route, written once and run in order from an
 * array (as aedes runs `connectActions`). The send routes run them on bare Node; express routes
 * through `asMiddleware`. Every route that takes a body checks in this order: who is asking,
 * that the body says it is JSON, that the server still takes work, then reads the body.
 */
export async function runSteps (steps: readonly Step[], exchange: Exchange): Promise<void> {
  for (const step of steps) await step(exchange)
}

/** `Authorization: Bearer <API key>`: the key's identity, or 401. */
export function authenticate (auth: AuthDeps): Step {
  return async exchange => { exchange.apiKey = await authenticateApiKey(auth, exchange.req) }
}

/**
 * A write that carries a body must say it is JSON (415 otherwise); reads and deletes have no
 * body the server would read, so whatever they carry is not looked at.
 */
export const requireJson: Step = ({ req }) => {
  if (req.method !== 'GET' && req.method !== 'DELETE' && req.method !== 'HEAD') requireJsonContent(req)
}

/** While this server shuts down, work is refused with the one shutting-down answer (503, Retry-After). */
export function requireAccepting (accepting: () => boolean): Step {
  return () => { if (!accepting()) throw shuttingDown() }
}

/** A POST's JSON body of at most `limit` bytes (413 past it); other methods have none to read. */
export function readBody (limit: number): Step {
  return async exchange => {
    if (exchange.req.method === 'POST') exchange.body = await readJsonBody(exchange.req, limit)
  }
}

/** Steps as express middleware: the body lands in `req.body`, the API key in `res.locals.apiKey`. */
export function asMiddleware (...steps: Step[]): RequestHandler {
  return (req, res, next) => {
    const exchange: Exchange = { req, res }
    runSteps(steps, exchange).then(() => {
      if (exchange.body !== undefined) req.body = exchange.body
      if (exchange.apiKey !== undefined) res.locals.apiKey = exchange.apiKey
      next()
    }, next)
  }
}
