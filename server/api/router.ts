import type { RequestListener } from 'node:http'
import express, { type RequestHandler } from 'express'
import type { Logger } from '../log.js'
import type { DeviceTokens } from '../auth/deviceTokens.js'
import { ProblemError } from '../errors.js'
import { requireAdmin, type AuthDeps } from '../http/auth.js'
import { checkRequestTarget, MAX_BODY_BYTES } from '../http/body.js'
import { asMiddleware, authenticate, readBody, requireAccepting, requireJson } from '../http/pipeline.js'
import { problemHandler, sendError } from '../http/respond.js'
import type { Metrics } from '../metrics.js'
import type { TrustProxy } from '../config.js'
import type { ApiKeyService } from '../services/apiKeys.js'
import type { DeviceService } from '../services/devices.js'
import type { MessageService } from '../services/messages.js'
import type { WebhookService } from '../services/webhooks.js'
import { webhookRoutes } from '../http/webhookRoutes.js'
import { apiKeysRouter } from './apiKeys.js'
import { devicesRouter } from './devices.js'
import { healthRouter, type ReadinessDeps } from './health.js'
import { messagesRouter } from './messages.js'
import { metricsRouter, metricsTokenOr } from './metrics.js'
import { sendRoutes } from './sendRoutes.js'
import { tokensRouter } from './tokens.js'

export interface ApiDeps {
  log: Logger
  auth: AuthDeps
  tokens: DeviceTokens
  messages: MessageService
  devices: DeviceService
  apiKeys: ApiKeyService
  webhooks: WebhookService
  readiness: ReadinessDeps
  /** false while shutting down: new work is refused with 503 */
  accepting: () => boolean
  metrics: Metrics
  metricsToken?: string
  /** which X-Forwarded-For hops to believe for req.ip (TRUST_PROXY); false: the socket's address */
  trustProxy?: TrustProxy
  /** the admin UI (server/admin/): its pages and /admin/api, and its session accepted on /v1/api-keys */
  adminUi?: {
    router: express.Router
    /** wraps the HTTP Basic admin guard so that the admin UI's session is accepted too */
    orSession: (basic: RequestHandler) => RequestHandler
  }
}

/**
 * The HTTP surface. Each route's guard and steps are visible here: an API key for backends,
 * admin credentials for managing keys, none for health. The two send routes come first, outside
 * express (sendRoutes.ts), with the same steps.
 */
export function createApi (deps: ApiDeps): RequestListener {
  const sends = sendRoutes({ log: deps.log, auth: deps.auth, messages: deps.messages, accepting: deps.accepting })
  const app = express()
  app.disable('x-powered-by')
  // API answers are never cached: hashing every body for an ETag is wasted work
  app.set('etag', false)
  // req.ip, the address the admin password limiter counts by (the admin UI's routes are mounted here too)
  app.set('trust proxy', deps.trustProxy ?? false)
  const apiKey = authenticate(deps.auth)
  const admin = deps.adminUi ? deps.adminUi.orSession(requireAdmin(deps.auth)) : requireAdmin(deps.auth)
  const accepting = requireAccepting(deps.accepting)
  const body = readBody(MAX_BODY_BYTES)

  app.use(healthRouter(deps.readiness))
  app.use(metricsRouter(deps.metrics, metricsTokenOr(deps.metricsToken, admin)))
  app.use('/v1/messages', asMiddleware(apiKey, requireJson, accepting, body), messagesRouter(deps.messages))
  app.use('/v1/tokens', asMiddleware(apiKey, requireJson, accepting, body), tokensRouter(deps.tokens))
  app.use('/v1/api-keys', admin, asMiddleware(requireJson, accepting, body), apiKeysRouter(deps.apiKeys))
  app.use('/v1/webhooks', admin,
    webhookRoutes(deps.webhooks, { read: [], write: [asMiddleware(requireJson, accepting, body)] }))
  app.use(['/v1/users', '/v1/devices'], asMiddleware(apiKey, accepting))
  app.use('/v1', devicesRouter(deps.devices, 'api'))
  // after /v1: a backend's send should not walk the admin UI's routes and static files first
  if (deps.adminUi) app.use(deps.adminUi.router)
  app.use((req, _res, next) => {
    const hint = req.path.startsWith('/v1') ? '; see openapi.yaml' : ''
    next(new ProblemError('not-found', `no route ${req.method} ${req.path}${hint}`))
  })
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
