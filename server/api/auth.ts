import type { IncomingMessage, ServerResponse } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { hashApiKey } from '../auth/secrets.js'
import type { LimitReason, PasswordLimiter } from '../auth/passwordLimiter.js'
import { ProblemError } from './problem.js'

export interface ApiKeyIdentity { id: string, name: string }

export interface AuthDeps {
  findApiKey: (keyHash: string) => Promise<ApiKeyIdentity | undefined>
  /** the admin password check, limited per client address */
  passwords: PasswordLimiter
  /** called once per authenticated request, so last-used times can be written in batches */
  onApiKeyUsed?: (id: string) => void
  /** a request with a missing or unknown API key; never limited (keys are long random strings), only counted */
  onApiKeyFailure?: (reason: 'missing' | 'unknown') => void
}

declare module 'express-serve-static-core' {
  interface Locals {
    apiKey?: ApiKeyIdentity
  }
}

/**
 * `Authorization: Bearer <API key>`: the key's identity, or a 401 problem (with its
 * WWW-Authenticate header set on `res`). Admin credentials are not an API key.
 */
export async function authenticateApiKey (deps: AuthDeps, req: IncomingMessage, res: ServerResponse): Promise<ApiKeyIdentity> {
  const header = req.headers.authorization ?? ''
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (!match) {
    deps.onApiKeyFailure?.('missing')
    res.setHeader('WWW-Authenticate', 'Bearer realm="herald"')
    throw new ProblemError('unauthorized', header ? 'Authorization header must be "Bearer <API key>"' : 'missing Authorization header; send "Authorization: Bearer <API key>"')
  }
  const key = await deps.findApiKey(hashApiKey(match[1]))
  if (!key) {
    deps.onApiKeyFailure?.('unknown')
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
  return (req, res, next) => {
    const header = req.get('authorization') ?? ''
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
    res.setHeader('WWW-Authenticate', 'Basic realm="herald admin", charset="UTF-8"')
    if (!match) {
      const detail = /^Bearer/i.test(header)
        ? 'API keys cannot manage API keys; use HTTP Basic with user "admin" and the admin password'
        : 'missing admin credentials; use HTTP Basic with user "admin" and the admin password'
      return next(new ProblemError('unauthorized', detail))
    }
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    const user = colon < 0 ? decoded : decoded.slice(0, colon)
    const password = colon < 0 ? '' : decoded.slice(colon + 1)
    checkAdminPassword(deps.passwords, req, res, user, password).then(() => next(), next)
  }
}

/**
 * The admin credentials check of both admin guards (HTTP Basic here, the login form in
 * server/admin/session.ts): resolves when they are right; otherwise a 401, or a 429 with
 * Retry-After while this client must wait. The client is `req.ip`: behind a reverse proxy,
 * the forwarded address when TRUST_PROXY says which hops to believe.
 */
export async function checkAdminPassword (
  passwords: PasswordLimiter, req: Request, res: Response, user: string, password: string
): Promise<void> {
  const verdict = await passwords.check(req.ip ?? req.socket.remoteAddress ?? 'unknown', user, password)
  if (verdict.outcome === 'right') return
  if (verdict.outcome === 'wrong') throw new ProblemError('unauthorized', 'wrong user or password')
  res.setHeader('Retry-After', String(verdict.retryAfterSeconds))
  const detail = limitDetail(verdict.reason, verdict.retryAfterSeconds, passwords.policy.maxBackoffSeconds)
  throw new ProblemError('too-many-requests', detail)
}

function limitDetail (reason: LimitReason, seconds: number, maxBackoffSeconds: number): string {
  switch (reason) {
    case 'backoff':
      return `too many wrong admin passwords from this address; try again in ${duration(seconds)} ` +
        `(each further wrong one doubles the wait, up to ${duration(maxBackoffSeconds)}; the right one resets it)`
    case 'in-flight':
      return `an admin password check from this address is still running; try again in ${duration(seconds)}`
    case 'busy':
      return `this server is busy checking other admin passwords; try again in ${duration(seconds)}`
  }
}

function duration (seconds: number): string {
  if (seconds < 120) return seconds === 1 ? '1 second' : `${seconds} seconds`
  return `${Math.ceil(seconds / 60)} minutes`
}
