import type { IncomingMessage } from 'node:http'
import type { Request, RequestHandler } from 'express'
import { hashApiKey } from '../auth/secrets.js'
import type { LimitReason, PasswordLimiter } from '../auth/passwordLimiter.js'
import { ProblemError } from '../errors.js'
import type { ApiKeyIdentity } from '../auth/apiKeyCache.js'

export interface AuthDeps {
  /** the active API key whose secret hashes to this (ApiKeyService.identify) */
  identifyApiKey: (keyHash: string) => Promise<ApiKeyIdentity | undefined>
  /** the admin password check, limited per client address */
  passwords: PasswordLimiter
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
 * WWW-Authenticate header). Admin credentials are not an API key.
 */
export async function authenticateApiKey (deps: AuthDeps, req: IncomingMessage): Promise<ApiKeyIdentity> {
  const header = req.headers.authorization ?? ''
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (!match) {
    deps.onApiKeyFailure?.('missing')
    const detail = header
      ? 'Authorization header must be "Bearer <API key>"'
      : 'missing Authorization header; send "Authorization: Bearer <API key>"'
    throw new ProblemError('unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="herald"' })
  }
  const key = await deps.identifyApiKey(hashApiKey(match[1]))
  if (!key) {
    deps.onApiKeyFailure?.('unknown')
    throw new ProblemError('unauthorized', 'API key is unknown or revoked', {},
      { 'WWW-Authenticate': 'Bearer realm="herald", error="invalid_token"' })
  }
  return key
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
    checkAdminPassword(deps.passwords, req, user, password).then(() => next(), next)
  }
}

/**
 * The admin credentials check of both admin guards (HTTP Basic here, the login form in
 * server/admin/session.ts): resolves when they are right; otherwise a 401, or a 429 with
 * Retry-After while this client must wait. The client is `req.ip`: behind a reverse proxy,
 * the forwarded address when TRUST_PROXY says which hops to believe.
 */
export async function checkAdminPassword (
  passwords: PasswordLimiter, req: Request, user: string, password: string
): Promise<void> {
  const verdict = await passwords.check(req.ip ?? req.socket.remoteAddress ?? 'unknown', user, password)
  if (verdict.outcome === 'right') return
  if (verdict.outcome === 'wrong') throw new ProblemError('unauthorized', 'wrong user or password')
  const detail = limitDetail(verdict.reason, verdict.retryAfterSeconds, passwords.policy.maxBackoffSeconds)
  throw new ProblemError('too-many-requests', detail, {}, { 'Retry-After': String(verdict.retryAfterSeconds) })
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
