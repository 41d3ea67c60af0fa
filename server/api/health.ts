import { Router } from 'express'

export interface Readiness {
  ready: boolean
  checks: Record<string, { ok: boolean, detail?: string }>
}

/** /healthz: the process answers. /readyz: it can take work (database, schema, broker). No key needed. */
export function healthRouter (readiness: () => Promise<Readiness>): Router {
  const router = Router()
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  router.get('/readyz', async (_req, res) => {
    const result = await readiness()
    res.status(result.ready ? 200 : 503).json({ status: result.ready ? 'ready' : 'not ready', checks: result.checks })
  })
  return router
}
