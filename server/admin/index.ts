import { Router, type RequestHandler } from 'express'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { DeviceTokens } from '../auth/deviceTokens.js'
import type { PasswordLimiter } from '../auth/passwordLimiter.js'
import type { DeliveryEngine } from '../delivery/engine.js'
import type { MessageService } from '../delivery/messageService.js'
import { apiKeysRouter } from '../api/apiKeys.js'
import { devicesRouter } from '../api/devices.js'
import { parseSendBody } from '../api/messages.js'
import { ProblemError } from '../api/problem.js'
import { tokensRouter } from '../api/tokens.js'
import { jsonBody, requireUuid } from '../api/validate.js'
import { getMessageDetail, listMessageLog, searchUsers } from '../store/adminLog.js'
import { readOverview } from '../store/adminStats.js'
import { AdminEvents } from './events.js'
import { encodeLogCursor, parseLogQuery } from './logQuery.js'
import { defaultWebDir, pagesRouter } from './pages.js'
import { AdminSessions } from './session.js'

/** Device timelines shown on a message's page; a topic message to more devices says how many are not shown. */
export const DETAIL_DEVICES_SHOWN = 500
const USER_SEARCH_LIMIT = 20
const ADMIN_BODY_LIMIT = 64 * 1024

/** messages.api_key_id is null for a message sent from the admin UI (its page then names "admin UI" as the sender). */
const ADMIN_UI_SENDER = null

export interface AdminDeps {
  pool: Pool
  log: Logger
  /** the admin password check, limited per client address (shared with the REST API's HTTP Basic) */
  passwords: PasswordLimiter
  tokens: DeviceTokens
  engine: DeliveryEngine
  messages: MessageService
  onApiKeyRevoked: (id: string) => void
  /** forgets a device's MQTT session state when an admin ends its session (as DELETE /v1/devices does) */
  endSession?: (deviceId: string) => Promise<void>
  /** false while shutting down */
  accepting: () => boolean
  /** the built front end; defaults to dist/web */
  webDir?: string
}

export interface Admin {
  /** /admin, /demo, /web assets and /admin/api/… */
  router: Router
  /** wraps the REST API's HTTP Basic admin guard so the admin session is accepted too */
  orSession: (basic: RequestHandler) => RequestHandler
  /** ends the live event streams (before the HTTP server closes) */
  close: () => void
}

/**
 * The admin UI's server side. Every /admin/api route but login sits behind the session; every
 * write also behind the CSRF check. Each route's guard is visible in the table below.
 */
export function createAdmin (deps: AdminDeps): Admin {
  const { pool } = deps
  const sessions = new AdminSessions({ pool, log: deps.log, passwords: deps.passwords })
  const detail = async (id: string): Promise<unknown> => {
    const m = await getMessageDetail(pool, id, DETAIL_DEVICES_SHOWN)
    return m && { ...m, sender: m.sender ?? 'admin UI', sentFromAdminUi: m.sender === null }
  }
  const events = new AdminEvents(pool, deps.log, detail)
  sessions.onLogout(idHash => events.endSession(idHash))

  const session = sessions.requireSession
  const csrf = sessions.requireCsrf
  const json = jsonBody(ADMIN_BODY_LIMIT)
  const accepting: RequestHandler = (_req, res, next) => {
    if (deps.accepting()) return next()
    res.setHeader('Retry-After', '5')
    next(new ProblemError('shutting-down', 'this server is shutting down; retry in a few seconds'))
  }

  const api = Router()
  api.post('/login', json, sessions.login)
  api.get('/session', session, sessions.current)
  api.post('/logout', session, csrf, sessions.logout)

  api.get('/overview', session, async (_req, res) => {
    res.json(await readOverview(pool))
  })
  api.get('/events', session, (req, res) => {
    const watch = typeof req.query.watch === 'string' && req.query.watch !== '' ? requireUuid(req.query.watch, 'message') : undefined
    events.open(req, res, watch)
  })

  api.get('/log', session, async (req, res) => {
    const q = parseLogQuery(req.query)
    const { rows, next } = await listMessageLog(pool, q.filter, q.after, q.limit)
    res.json({ items: rows, next: next ? encodeLogCursor(next) : null })
  })
  api.get('/messages/:id', session, async (req, res) => {
    const m = await detail(requireUuid(String(req.params.id), 'message'))
    if (!m) throw new ProblemError('not-found', `no message with id ${req.params.id}`)
    res.json(m)
  })
  // a test push: the same validation and the same path to delivery as POST /v1/messages
  api.post('/messages', session, csrf, json, accepting, async (req, res) => {
    const result = await deps.messages.send(parseSendBody(req.body), ADMIN_UI_SENDER)
    res.status(result.status).json(result.body)
  })
  api.delete('/messages/:id', session, csrf, async (req, res) => {
    const id = requireUuid(String(req.params.id), 'message')
    const result = await deps.messages.revoke(id, 'admin')
    if (!result) throw new ProblemError('not-found', `no message with id ${id}`)
    res.json({ id, revoked: result.revoked })
  })

  api.get('/users', session, async (req, res) => {
    const prefix = typeof req.query.prefix === 'string' ? req.query.prefix.slice(0, 128) : ''
    res.json(await searchUsers(pool, prefix, USER_SEARCH_LIMIT))
  })
  // the REST API's own routers, behind the session instead of an API key / HTTP Basic
  api.use('/api-keys', session, csrf, json, apiKeysRouter(pool, deps.onApiKeyRevoked))
  api.use('/tokens', session, csrf, json, tokensRouter(deps.tokens))
  api.use(session, csrf, devicesRouter(pool, deps.engine, deps.endSession, 'admin'))
  api.use((req, _res, next) => next(new ProblemError('not-found', `no route ${req.method} ${req.path} under /admin/api`)))

  const router = Router()
  router.use('/admin/api', api)
  router.use(pagesRouter(deps.webDir ?? defaultWebDir()))
  return {
    router,
    orSession: basic => sessions.orSession(basic),
    close: () => events.close()
  }
}
