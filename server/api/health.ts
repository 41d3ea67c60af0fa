import { Router } from 'express'
import type { Pool } from '../db/pool.js'
import { appliedMigrations } from '../store/schema.js'

export interface Readiness {
  ready: boolean
  checks: Record<string, { ok: boolean, detail?: string }>
}

export interface ReadinessDeps {
  pool: Pool
  /** the migrations this build ships (db/migrate.ts expectedMigrations) */
  expectedMigrations: readonly string[]
  brokerListening: () => boolean
  accepting: () => boolean
}

// /readyz answers 503 when the database does not answer within this, rather than hang: a query
// on a pooled connection whose network path died waits until TCP gives up (minutes)
const READY_DB_TIMEOUT_MS = 3_000

/** Whether this process can take work: the database answers, the schema is current, the broker listens. */
export async function readiness (deps: ReadinessDeps): Promise<Readiness> {
  const checks: Readiness['checks'] = {}
  try {
    const have = new Set(await withTimeout(appliedMigrations(deps.pool), READY_DB_TIMEOUT_MS))
    const missing = deps.expectedMigrations.filter(n => !have.has(n))
    checks.database = { ok: true }
    checks.migrations = missing.length === 0
      ? { ok: true }
      : { ok: false, detail: `not applied: ${missing.join(', ')}` }
  } catch (err) {
    checks.database = { ok: false, detail: (err as Error).message }
    checks.migrations = { ok: false, detail: 'database unreachable' }
  }
  checks.broker = deps.brokerListening() ? { ok: true } : { ok: false, detail: 'MQTT listener closed' }
  checks.accepting = deps.accepting() ? { ok: true } : { ok: false, detail: 'shutting down' }
  return { ready: Object.values(checks).every(c => c.ok), checks }
}

async function withTimeout<T> (work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the database within ${ms} ms`)), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

/** /healthz: the process answers. /readyz: it can take work (database, schema, broker). No key needed. */
export function healthRouter (deps: ReadinessDeps): Router {
  const router = Router()
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  router.get('/readyz', async (_req, res) => {
    const result = await readiness(deps)
    res.status(result.ready ? 200 : 503).json({ status: result.ready ? 'ready' : 'not ready', checks: result.checks })
  })
  return router
}
