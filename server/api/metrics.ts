import { Router, type RequestHandler } from 'express'
import { sameText } from '../auth/secrets.js'
import type { Metrics } from '../metrics.js'

/** GET /metrics in Prometheus' text format. */
export function metricsRouter (metrics: Metrics, guard: RequestHandler): Router {
  const router = Router()
  router.get('/metrics', guard, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
  return router
}

/** `Authorization: Bearer <METRICS_TOKEN>` passes; anything else goes on to `otherwise` (admin credentials). */
export function metricsTokenOr (token: string | undefined, otherwise: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')
    if (token !== undefined && match && sameText(match[1], token)) return next()
    otherwise(req, res, next)
  }
}
