import type { RequestListener } from 'node:http'
import express, { type RequestHandler } from 'express'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import type { DeviceTokens } from '../auth/deviceTokens.js'
import type { DeliveryEngine } from '../delivery/engine.js'
import type { MessageService } from '../delivery/messageService.js'
import type { Admin } from '../admin/index.js'
import { requireAdmin, requireApiKey, type AuthDeps } from './auth.js'
import { apiKeysRouter } from './apiKeys.js'
import { devicesRouter } from './devices.js'
import { healthRouter, type Readiness } from './health.js'
import { messagesRouter } from './messages.js'
import { metricsRouter, metricsTokenOr } from './metrics.js'
import type { Metrics } from '../metrics.js'
import type { TrustProxy } from '../config.js'
import { ProblemError, problemHandler, sendError, shuttingDown } from './problem.js'
import { checkRequestTarget, jsonBody, MAX_BODY_BYTES, requireJsonContent } from './validate.js'
import { sendRoutes } from './sendRoutes.js'
import { tokensRouter } from './tokens.js'

export interface ApiDeps {
  pool: Pool
  log: Logger
  auth: AuthDeps
  tokens: DeviceTokens
  engine: DeliveryEngine
  /** forgets a device's MQTT session state (its subscriptions) when an admin ends the session */
  endSession?: (deviceId: string) => Promise<void>
  messages: MessageService
  readiness: () => Promise<Readiness>
  onApiKeyRevoked: (id: string) => void
  /** false while shutting down: new sends are refused with 503 */
  accepting: () => boolean
  metrics: Metrics
  metricsToken?: string
  /** which X-Forwarded-For hops to believe for req.ip (TRUST_PROXY); false: the socket's address */
  trustProxy?: TrustProxy
  /** the admin UI (server/admin/): its pages and /admin/api, and its session accepted on /v1/api-keys */
  adminUi?: Pick<Admin, 'router' | 'orSession'>
}

/**
 * The HTTP surface. Each route's guard is visible here: `apiKey` for backends, `admin` for
 * managing keys, none for health. The two send routes come first, outside express (sendRoutes.ts).
 */
export function createApi (deps: ApiDeps): RequestListener {
  const sends = sendRoutes({ log: deps.log, auth: deps.auth, messages: deps.messages, accepting: deps.accepting })
  const app = express()
  app.disable('x-powered-by')
  // API answers are never cached: hashing every body for an ETag is wasted work
  app.set('etag', false)
  // req.ip, the address the admin password limiter counts by (the admin UI's routes are mounted here too)
  app.set('trust proxy', deps.trustProxy ?? false)
  const apiKey = requireApiKey(deps.auth)
  const admin = deps.adminUi ? deps.adminUi.orSession(requireAdmin(deps.auth)) : requireAdmin(deps.auth)
  // only request bodies of writes are read; the send routes choose their own size limits
  const json = jsonBody(MAX_BODY_BYTES)
  const onlyJson: RequestHandler = (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') return next()
    try { requireJsonContent(req) } catch (err) { return next(err) }
    next()
  }
  const accepting: RequestHandler = (_req, res, next) => deps.accepting() ? next() : next(shuttingDown(res))

  app.use(healthRouter(deps.readiness))
  app.use(metricsRouter(deps.metrics, metricsTokenOr(deps.metricsToken, admin)))
  app.use('/v1/messages', apiKey, onlyJson, accepting, messagesRouter(deps.messages))
  app.use('/v1/tokens', apiKey, onlyJson, json, tokensRouter(deps.tokens))
  app.use('/v1/api-keys', admin, onlyJson, json, apiKeysRouter(deps.pool, deps.onApiKeyRevoked))
  app.use(['/v1/users', '/v1/devices'], apiKey)
  app.use('/v1', devicesRouter(deps.pool, deps.engine, deps.endSession, 'api'))
  // after /v1: a backend's send should not walk the admin UI's routes and static files first
  if (deps.adminUi) app.use(deps.adminUi.router)
  app.use((req, _res, next) => next(new ProblemError('not-found', `no route ${req.method} ${req.path}${req.path.startsWith('/v1') ? '; see openapi.yaml' : ''}`)))
  app.use(problemHandler(deps.log))
  return (req, res) => {
    // every answer, JSON or page: a browser must not guess another type from the content
    res.setHeader('X-Content-Type-Options', 'nosniff')
    try {
      checkRequestTarget(req.url ?? '')
    } catch (err) {
      return sendError(deps.log, req, res, err)
    }
    if (!sends(req, res)) app(req, res)
  }
}
