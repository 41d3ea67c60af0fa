import { Router } from 'express'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { DeviceTokens } from '../auth/deviceTokens.js'
import type { PasswordLimiter } from '../auth/passwordLimiter.js'
import { ProblemError } from '../errors.js'
import { encodeLogCursor, parseLogQuery, type LogQueryRules } from '../http/logQuery.js'
import { asMiddleware, readBody, requireAccepting, requireJson } from '../http/pipeline.js'
import { parseApiKeyRequest, parseSendBody, parseTokenRequest } from '../http/requests.js'
import { requireUuid } from '../http/validate.js'
import type { ApiKeyService } from '../services/apiKeys.js'
import type { WebhookService } from '../services/webhooks.js'
import { webhookRoutes } from '../http/webhookRoutes.js'
import type { DeviceService } from '../services/devices.js'
import type { MessageService } from '../services/messages.js'
import { getMessageDetail, listMessageLog, searchUsers } from '../store/adminLog.js'
import { readOverview } from '../store/adminStats.js'
import { listNodes } from '../store/devices.js'
import type { NodeList } from '../wire.js'
import { AdminEvents } from './events.js'
import { defaultWebDir, pagesRouter } from './pages.js'
import { AdminSessions } from './session.js'

/** Device timelines shown on a message's page; a topic message to more devices says how many are not shown. */
export const DETAIL_DEVICES_SHOWN = 500
const USER_SEARCH_LIMIT = 20
const ADMIN_BODY_LIMIT = 64 * 1024
// the message log: a row per message, filtered by the form's fields (blank ones mean no filter)
const LOG_RULES: LogQueryRules = {
  extra: ['messageId', 'text'],
  defaultLimit: 25,
  maxLimit: 100,
  nextMember: 'next',
  cursorHasId: true,
  emptyIsAbsent: true
}

/** messages.api_key_id is null for a message sent from the admin UI (its page then names "admin UI" as the sender). */
const ADMIN_UI_SENDER = null

export interface AdminDeps {
  pool: Pool
  log: Logger
  /** this process' row in `nodes`: the Nodes page marks the node that served it */
  nodeId: string
  /** the admin password check, limited per client address (shared with the REST API's HTTP Basic) */
  passwords: PasswordLimiter
  tokens: DeviceTokens
  messages: MessageService
  devices: DeviceService
  apiKeys: ApiKeyService
  webhooks: WebhookService
  /** false while shutting down */
  accepting: () => boolean
  /** the built front end; defaults to dist/web */
  webDir?: string
}

export interface Admin {
  /** /admin, /demo, /web assets and /admin/api/… */
  router: Router
  /** wraps the REST API's HTTP Basic admin guard so the admin session is accepted too */
  orSession: AdminSessions['orSession']
  /** ends the live event streams (before the HTTP server closes) */
  close: () => void
}

/**
 * The admin UI's server side. Every /admin/api route but login sits behind the session; every
 * write also behind the CSRF check. Each route's guard is visible in the table below; each
 * route calls the same service function as its REST API counterpart.
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
  const accepting = requireAccepting(deps.accepting)
  const body = readBody(ADMIN_BODY_LIMIT)
  const write = asMiddleware(requireJson, accepting, body)

  const api = Router()
  api.post('/login', asMiddleware(requireJson, body), sessions.login)
  api.get('/session', session, sessions.current)
  api.post('/logout', session, csrf, sessions.logout)

  api.get('/overview', session, async (_req, res) => {
    res.json(await readOverview(pool))
  })
  api.get('/events', session, (req, res) => {
    const watch = typeof req.query.watch === 'string' && req.query.watch !== ''
      ? requireUuid(req.query.watch, 'message')
      : undefined
    events.open(req, res, watch)
  })
  api.get('/nodes', session, async (_req, res) => {
    const answer: NodeList = { servedBy: deps.nodeId, ...await listNodes(pool) }
    res.json(answer)
  })

  api.get('/log', session, async (req, res) => {
    const q = parseLogQuery(req.query, LOG_RULES)
    const { rows, next } = await listMessageLog(pool, q.filter, q.after as typeof q.after & { id: string }, q.limit)
    res.json({ items: rows, next: next ? encodeLogCursor(next) : null })
  })
  api.get('/messages/:id', session, async (req, res) => {
    const m = await detail(requireUuid(String(req.params.id), 'message'))
    if (!m) throw new ProblemError('not-found', `no message with id ${req.params.id}`)
    res.json(m)
  })
  // a test push: the same validation and the same path to delivery as POST /v1/messages
  api.post('/messages', session, csrf, write, async (req, res) => {
    const { response } = await deps.messages.send(parseSendBody(req.body), ADMIN_UI_SENDER)
    res.status(202).json(response)
  })
  api.delete('/messages/:id', session, csrf, write, async (req, res) => {
    const id = requireUuid(String(req.params.id), 'message')
    const result = await deps.messages.revoke(id, 'admin')
    if (!result) throw new ProblemError('not-found', `no message with id ${id}`)
    res.json({ id, revoked: result.revoked })
  })

  api.get('/users', session, async (req, res) => {
    const prefix = typeof req.query.prefix === 'string' ? req.query.prefix.slice(0, 128) : ''
    res.json(await searchUsers(pool, prefix, USER_SEARCH_LIMIT))
  })
  api.get('/users/:user/devices', session, async (req, res) => {
    res.json(await deps.devices.listForUser(String(req.params.user)))
  })
  api.delete('/devices/:deviceId', session, csrf, write, async (req, res) => {
    const ended = await deps.devices.end(String(req.params.deviceId), 'admin')
    if (!ended) throw new ProblemError('not-found', `no device with id ${JSON.stringify(String(req.params.deviceId))}`)
    res.json(ended)
  })

  api.post('/api-keys', session, csrf, write, async (req, res) => {
    // the only time the secret is shown
    res.status(201).json(await deps.apiKeys.create(parseApiKeyRequest(req.body).name))
  })
  api.get('/api-keys', session, async (_req, res) => {
    res.json(await deps.apiKeys.list())
  })
  api.delete('/api-keys/:id', session, csrf, write, async (req, res) => {
    const id = requireUuid(String(req.params.id), 'API key')
    const row = await deps.apiKeys.revoke(id)
    if (!row) throw new ProblemError('not-found', `no API key with id ${id}`)
    res.json(row)
  })
  api.post('/tokens', session, csrf, write, (req, res) => {
    const { user, ttl } = parseTokenRequest(req.body)
    res.status(201).json(deps.tokens.sign(user, ttl))
  })
  api.use('/webhooks', webhookRoutes(deps.webhooks, { read: [session], write: [session, csrf, write] }))
  // behind the session: which routes exist is not told to whoever is not logged in
  api.use(session, (req, _res, next) => {
    next(new ProblemError('not-found', `no route ${req.method} ${req.path} under /admin/api`))
  })

  const router = Router()
  router.use('/admin/api', api)
  router.use(pagesRouter(deps.webDir ?? defaultWebDir()))
  return {
    router,
    orSession: basic => sessions.orSession(basic),
    close: () => events.close()
  }
}
