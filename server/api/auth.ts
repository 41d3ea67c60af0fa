import { timingSafeEqual, createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { hashApiKey, verifyPassword } from '../auth/secrets.js'
import { ProblemError } from './problem.js'

export interface ApiKeyIdentity { id: string, name: string }

export interface AuthDeps {
  findApiKey: (keyHash: string) => Promise<ApiKeyIdentity | undefined>
  adminPasswordHash: string
  /** called once per authenticated request, so last-used times can be written in batches */
  onApiKeyUsed?: (id: string) => void
}

declare module 'express-serve-static-core' {
  interface Locals {
    apiKey?: ApiKeyIdentity
  }
}

const ADMIN_USER = 'admin'
// Brute force on the admin password: after this many failures in the window, refuse for the rest of it.
const ADMIN_FAILURES_ALLOWED = 10
const ADMIN_FAILURE_WINDOW_MS = 60_000

/**
 * `Authorization: Bearer <API key>`: the key's identity, or a 401 problem (with its
 * WWW-Authenticate header set on `res`). Admin credentials are not an API key.
 */
export async function authenticateApiKey (deps: AuthDeps, req: IncomingMessage, res: ServerResponse): Promise<ApiKeyIdentity> {
  const header = req.headers.authorization ?? ''
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (!match) {
    res.setHeader('WWW-Authenticate', 'Bearer realm="herald"')
    throw new ProblemError('unauthorized', header ? 'Authorization header must be "Bearer <API key>"' : 'missing Authorization header; send "Authorization: Bearer <API key>"')
  }
  const key = await deps.findApiKey(hashApiKey(match[1]))
  if (!key) {
    res.setHeader('WWW-Authenticate', 'Bearer realm="herald", error="invalid_token"')
    throw new ProblemError('unauthorized', 'API key is unknown or revoked')
  }
  deps.onApiKeyUsed?.(key.id)
  return key
}

/** authenticateApiKey as express middleware: the key is in `res.locals.apiKey`. */
export function requireApiKey (deps: AuthDeps): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    authenticateApiKey(deps, req, res).then(key => {
      res.locals.apiKey = key
      next()
    }, next)
  }
}

/** HTTP Basic `admin:<admin password>`, for managing API keys; never an API key. */
export function requireAdmin (deps: AuthDeps): RequestHandler {
  // per client address, so one attacker cannot lock the real admin out
  const failuresByAddress = new Map<string, number[]>()
  return (req, res, next) => {
    const now = Date.now()
    const address = req.socket.remoteAddress ?? 'unknown'
    if (failuresByAddress.size > 10_000) failuresByAddress.clear()
    const failures = (failuresByAddress.get(address) ?? []).filter(t => now - t < ADMIN_FAILURE_WINDOW_MS)
    failuresByAddress.set(address, failures)
    const header = req.get('authorization') ?? ''
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
    res.setHeader('WWW-Authenticate', 'Basic realm="herald admin", charset="UTF-8"')
    if (!match) {
      const detail = /^Bearer/i.test(header)
        ? 'API keys cannot manage API keys; use HTTP Basic with user "admin" and the admin password'
        : 'missing admin credentials; use HTTP Basic with user "admin" and the admin password'
      return next(new ProblemError('unauthorized', detail))
    }
    if (failures.length >= ADMIN_FAILURES_ALLOWED) {
      res.setHeader('Retry-After', String(Math.ceil(ADMIN_FAILURE_WINDOW_MS / 1000)))
      return next(new ProblemError('too-many-requests', 'too many failed admin logins; wait a minute'))
    }
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    const user = colon < 0 ? decoded : decoded.slice(0, colon)
    const password = colon < 0 ? '' : decoded.slice(colon + 1)
    verifyPassword(password, deps.adminPasswordHash).then(ok => {
      if (!ok || !sameText(user, ADMIN_USER)) {
        failures.push(now)
        return next(new ProblemError('unauthorized', 'wrong admin user or password'))
      }
      next()
    }, next)
  }
}

function sameText (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}
