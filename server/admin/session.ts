import { createHash, randomBytes } from 'node:crypto'
import type { Request, RequestHandler, Response } from 'express'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import { sameText } from '../auth/secrets.js'
import { ADMIN_USER, type PasswordLimiter } from '../auth/passwordLimiter.js'
import { checkAdminPassword } from '../http/auth.js'
import { ProblemError } from '../errors.js'
import {
  deleteAdminSession, deleteExpiredAdminSessions, findAdminSession, insertAdminSession
} from '../store/adminSessions.js'

export const SESSION_COOKIE = 'herald_admin'
export const CSRF_HEADER = 'x-herald-csrf'
// A session unused for this long ends; an admin at work keeps it alive by using the UI.
export const SESSION_IDLE_SECONDS = 12 * 3600
// ...and none lives longer than this, however busy: a stolen cookie stops working within a week.
export const SESSION_MAX_AGE_SECONDS = 7 * 24 * 3600
// Idle expiry is pushed forward at most once a minute per session, not on every request.
const SESSION_TOUCH_SECONDS = 60

declare module 'express-serve-static-core' {
  interface Locals {
    /** sha256 of the admin session id, set by requireSession */
    adminSession?: string
  }
}

export interface SessionDeps {
  pool: Pool
  log: Logger
  /** the admin password check, limited per client address (shared with the REST API's HTTP Basic) */
  passwords: PasswordLimiter
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/**
 * The CSRF token of a session: derived from its id, so nothing more is stored, and one-way,
 * so a leaked token does not reveal the session. The UI echoes it in X-Herald-CSRF on writes.
 */
export function csrfTokenOf (sessionId: string): string {
  return createHash('sha256').update(`herald-csrf:${sessionId}`).digest('base64url')
}

function hostOf (origin: string): string | undefined {
  try { return new URL(origin).host } catch { return undefined }
}

export function readCookie (req: Request, name: string): string | undefined {
  const header = req.headers.cookie
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim()
      try { return decodeURIComponent(value) } catch { return undefined }
    }
  }
  return undefined
}

function setSessionCookie (req: Request, res: Response, value: string, maxAgeSeconds: number): void {
  // Secure only over TLS: over plain http (localhost) a Secure cookie would never come back
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`]
  if (req.secure) attrs.push('Secure')
  res.append('Set-Cookie', `${SESSION_COOKIE}=${value}; ${attrs.join('; ')}`)
}

/**
 * Admin sessions: login, logout, and the guards every admin route sits behind. Sessions live in
 * `admin_sessions` (so every process shares them) under the sha256 of their id.
 */
export class AdminSessions {
  private readonly logoutListeners: Array<(idHash: string) => void> = []

  constructor (private readonly deps: SessionDeps) {}

  onLogout (listener: (idHash: string) => void): void {
    this.logoutListeners.push(listener)
  }

  /** POST /admin/api/login `{"user"?: "admin", "password"}` → 200 `{csrfToken, expiresAt}` and the cookie. */
  readonly login: RequestHandler = async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>
    const user = body.user === undefined ? ADMIN_USER : body.user
    if (typeof user !== 'string' || typeof body.password !== 'string' ||
      body.password.length === 0 || body.password.length > 1024) {
      throw new ProblemError('invalid-request', 'send {"user": "admin", "password": "…"} as JSON',
        { errors: [{ field: 'password', message: 'required string' }] })
    }
    await checkAdminPassword(this.deps.passwords, req, user, body.password)
    const address = req.ip ?? req.socket.remoteAddress
    const sessionId = randomBytes(32).toString('base64url')
    const row = await insertAdminSession(this.deps.pool, sha256(sessionId), SESSION_IDLE_SECONDS,
      { ip: address, userAgent: req.get('user-agent') })
    // opportunistic sweep: logins are rare, so this keeps the table small at no steady cost
    deleteExpiredAdminSessions(this.deps.pool)
      .catch(err => this.deps.log.warn({ err: (err as Error).message }, 'sweeping admin sessions failed'))
    setSessionCookie(req, res, sessionId, SESSION_MAX_AGE_SECONDS)
    this.deps.log.info({ address }, 'admin logged in')
    res.json({ user: ADMIN_USER, csrfToken: csrfTokenOf(sessionId), expiresAt: row.expiresAt })
  }

  /** POST /admin/api/logout: ends the session (behind requireSession and requireCsrf). */
  readonly logout: RequestHandler = async (req, res) => {
    const idHash = res.locals.adminSession!
    await deleteAdminSession(this.deps.pool, idHash)
    for (const l of this.logoutListeners) l(idHash)
    setSessionCookie(req, res, '', 0)
    res.status(204).end()
  }

  /** GET /admin/api/session: who is logged in, and the CSRF token again after a page reload. */
  readonly current: RequestHandler = async (req, res) => {
    const id = readCookie(req, SESSION_COOKIE)!
    const row = await this.find(id)
    res.json({ user: ADMIN_USER, csrfToken: csrfTokenOf(id), expiresAt: row?.expiresAt })
  }

  private async find (sessionId: string | undefined): Promise<{ idHash: string, expiresAt: Date } | undefined> {
    if (!sessionId || sessionId.length > 100) return undefined
    const idHash = sha256(sessionId)
    const row = await findAdminSession(this.deps.pool, idHash,
      SESSION_IDLE_SECONDS, SESSION_MAX_AGE_SECONDS, SESSION_TOUCH_SECONDS)
    return row ? { idHash, expiresAt: row.expiresAt } : undefined
  }

  /** 401 problem JSON unless the request carries a live session cookie. */
  readonly requireSession: RequestHandler = (req, res, next) => {
    this.find(readCookie(req, SESSION_COOKIE)).then(session => {
      if (!session) return next(new ProblemError('unauthorized', 'log in to the admin UI first: POST /admin/api/login'))
      res.locals.adminSession = session.idHash
      res.setHeader('Cache-Control', 'no-store')
      next()
    }, next)
  }

  /**
   * Writes need more than the cookie (SameSite=Strict already keeps other sites from sending
   * it): the session's CSRF token in X-Herald-CSRF, which only our own pages can read, and an
   * Origin, when the browser sends one, that is this server.
   */
  readonly requireCsrf: RequestHandler = (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next()
    // the host only: behind a TLS-terminating proxy the scheme seen here is http
    const origin = req.get('origin')
    if (origin !== undefined && hostOf(origin) !== req.get('host')) {
      return next(new ProblemError('forbidden', `cross-origin write refused (Origin ${origin})`))
    }
    const sent = req.get(CSRF_HEADER)
    const id = readCookie(req, SESSION_COOKIE)
    if (!sent || !id || !sameText(sent, csrfTokenOf(id))) {
      return next(new ProblemError('forbidden', `missing or wrong ${CSRF_HEADER} header; ` +
        'it is the csrfToken returned by login and GET /admin/api/session'))
    }
    next()
  }

  /**
   * For the admin routes of the REST API (/v1/api-keys): a request with a session cookie is
   * authorised by the session (and must pass the CSRF check to write); any other goes to `basic`.
   */
  orSession (basic: RequestHandler): RequestHandler {
    return (req, res, next) => {
      const useBasic = readCookie(req, SESSION_COOKIE) === undefined || req.get('authorization') !== undefined
      if (useBasic) return basic(req, res, next)
      this.requireSession(req, res, err => {
        if (err !== undefined) return next(err)
        this.requireCsrf(req, res, next)
      })
    }
  }
}
