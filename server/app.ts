import { createServer, type Server, type ServerOptions } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Config } from './config.js'
import { createPool, type Pool } from './db/pool.js'
import { expectedMigrations, migrate } from './db/migrate.js'
import type { Logger } from './log.js'
import { DeviceTokens } from './auth/deviceTokens.js'
import { PasswordLimiter, type PasswordPolicy } from './auth/passwordLimiter.js'
import { generateApiKey, generateJwtSecret, generatePassword, hashApiKey, hashPassword } from './auth/secrets.js'
import { countApiKeys, ensureApiKey, findActiveApiKeyByHash, insertApiKey, touchApiKeys } from './store/apiKeys.js'
import { getOrCreateSetting } from './store/settings.js'
import { claimDevice, heartbeatNode, markDisconnected, releaseDeadNodes } from './store/devices.js'
import { discardDeviceQueue } from './store/deliveries.js'
import { PgPersistence } from './broker/pgPersistence.js'
import { Broker } from './broker/broker.js'
import { DeliveryEngine } from './delivery/engine.js'
import { DeliveryStateWriter } from './delivery/stateWriter.js'
import { Acceptor } from './delivery/acceptor.js'
import { MessageService } from './delivery/messageService.js'
import { Maintenance, NODE_STALE_SECONDS } from './delivery/maintenance.js'
import { createApi } from './api/router.js'
import { createAdmin } from './admin/index.js'
import { KEY_PREFIX_LENGTH } from './api/apiKeys.js'
import type { Readiness } from './api/health.js'
import { metricsRouter } from './api/metrics.js'
import { Metrics } from './metrics.js'
import { countPendingDeliveries } from './store/deliveries.js'
import express from 'express'

/** Secrets generated on this start; shown once by the entry file, never stored in clear. */
export interface FirstStart {
  adminPassword?: string
  apiKey?: string
}

export interface Herald {
  readonly http: Server
  readonly url: string
  readonly mqttTcpPort: number | undefined
  /** the separate /metrics port, when METRICS_PORT is set */
  readonly metricsPort: number | undefined
  readonly firstStart: FirstStart
  readonly nodeId: string
  /** Stops accepting, closes the broker, flushes delivery state, closes the pool. */
  stop: () => Promise<void>
}

export interface HeraldDeps {
  log: Logger
  /** defaults to a pool on config.databaseUrl */
  pool?: Pool
  /** tests lower it to reach it with a few devices */
  maxBatchTopicDeliveries?: number
  /** tests shorten or lengthen the admin password backoff */
  passwordPolicy?: Partial<PasswordPolicy>
  /** tests shorten them to watch them act */
  httpTimeouts?: HttpTimeouts
  /** tests shorten it to see a silent device dropped (hooks.ts MAX_KEEPALIVE_S) */
  maxKeepaliveSeconds?: number
}

// How long a cached API key lookup is trusted; a key revoked on another server stops working within this.
const API_KEY_CACHE_MS = 5_000
// bounds each of the two caches (known keys, unknown keys): cleared when full
const API_KEY_CACHE_ENTRIES = 10_000
const LAST_USED_FLUSH_MS = 30_000
// readyz answers 503 when the database does not answer within this, rather than hang: a query
// on a pooled connection whose network path died waits until TCP gives up (minutes)
const READY_DB_TIMEOUT_MS = 3_000
// on stop, how long HTTP requests in flight may take before their connections are closed
const HTTP_DRAIN_MS = 2_000

export interface HttpTimeouts { headersMs: number, requestMs: number }
/**
 * How long a client may take to send a request's headers (a WebSocket upgrade's too) and the
 * whole request. Without them a connection that trickles a header line every few seconds is held
 * for ever (500 such were all still open after 72 s). A backend sends its headers in one packet:
 * 10 s is slack for a slow mobile link; the largest body, a 2 MiB batch, arrives in 30 s at
 * 70 KB/s. An upgraded WebSocket (an MQTT device) is no longer an HTTP request: neither applies.
 */
export const HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000 }
// how often Node looks for connections past those timeouts: its default (30 s) would let them live 40 s
const HTTP_TIMEOUT_CHECK_MS = 1_000

function httpServerOptions ({ headersMs, requestMs }: HttpTimeouts): ServerOptions {
  return { headersTimeout: headersMs, requestTimeout: requestMs, connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_MS }
}

/**
 * Builds and starts a Herald server from a parsed config. Only the entry file reads the
 * environment; tests call this with port 0.
 */
export async function startHerald (config: Readonly<Config>, deps: HeraldDeps): Promise<Herald> {
  const { log } = deps
  if (!config.databaseUrl && !deps.pool) throw new Error('startHerald needs config.databaseUrl or a pool')
  const pool = deps.pool ?? createPool({ connectionString: config.databaseUrl! })
  const nodeId = `node-${randomUUID()}`
  const nodeLog = log.child({ nodeId })

  const { applied } = await migrate(pool)
  if (applied.length > 0) nodeLog.info({ applied }, 'migrations applied')
  const migrationNames = await expectedMigrations()

  const firstStart: FirstStart = {}
  const tokens = await deviceTokens(config, pool)
  const adminPasswordHash = await adminPassword(config, pool, firstStart)
  await seedApiKeys(config, pool, firstStart)

  await heartbeatNode(pool, nodeId)
  const released = await releaseDeadNodes(pool, NODE_STALE_SECONDS)
  if (released > 0) nodeLog.info({ devices: released }, 'marked devices of stopped servers offline')

  const metrics = new Metrics()
  const writer = new DeliveryStateWriter(pool, nodeLog, metrics)
  let engine: DeliveryEngine | undefined
  const persistence = new PgPersistence({ pool, outgoingAcks: (client, messageId) => engine?.ack(client, messageId) })
  // once per PUBACK: a bound child skips hashing the label set every time
  const deliveredCount = metrics.deliveries.labels({ status: 'delivered' })
  engine = new DeliveryEngine(pool, writer, nodeLog, {
    maxInflight: config.maxInflightPerDevice,
    stalledDeviceTimeoutMs: config.stalledDeviceTimeoutMs
  }, {
    delivered: latencyMs => {
      deliveredCount.inc()
      metrics.deliveryLatency.observe(latencyMs / 1000)
    },
    stalled: () => metrics.stalledDisconnects.inc()
  })
  const deliveryEngine = engine

  const disconnects = new Batch<string>(ids => markDisconnected(pool, ids, nodeId), nodeLog, 'marking devices offline')
  const broker = new Broker({
    persistence,
    tokens,
    log: nodeLog,
    claimDevice: async (deviceId, userId, persistent) => {
      const result = await claimDevice(pool, deviceId, userId, persistent, nodeId)
      if (result.ok && result.discardQueueUpTo !== undefined) {
        // a clean session starts empty: drop what an earlier session of this device left queued
        await discardDeviceQueue(pool, deviceId, result.discardQueueUpTo,
          result.discardedPersistentSession ? 'session-discarded' : 'clean-session-ended')
      }
      return result
    },
    recordReceipt: receipt => writer.receipt({ ...receipt, at: new Date() }),
    onAuthFailure: reason => metrics.authFailures.inc({ reason }),
    onReady: client => {
      metrics.connects.inc()
      deliveryEngine.attach(client)
    },
    onGone: client => {
      metrics.disconnects.inc()
      deliveryEngine.detach(client)
      disconnects.add(client.id)
    },
    maxKeepaliveSeconds: deps.maxKeepaliveSeconds
  }, nodeLog)
  await broker.start()

  const acceptor = new Acceptor(pool, nodeLog, (requests, outcomes) => messageService.dispatchAccepted(requests, outcomes), metrics)
  const messageService = new MessageService(pool, acceptor, deliveryEngine, async topic => {
    const persistent = await persistence.subscriptionsByTopic(topic) as Array<{ clientId: string }>
    return [...new Set([...persistent.map(s => s.clientId), ...broker.onlineSubscribers(topic)])]
  }, metrics, deps.maxBatchTopicDeliveries)
  metrics.observe({
    connectedDevices: () => broker.connectedCount,
    bufferedDeliveries: () => deliveryEngine.bufferedDeliveries,
    pool,
    pendingDeliveries: () => countPendingDeliveries(pool)
  })

  const passwords = new PasswordLimiter({
    pool,
    log: nodeLog,
    adminPasswordHash,
    policy: deps.passwordPolicy,
    onChecked: result => metrics.passwordChecks.inc({ result }),
    onLimited: reason => metrics.passwordChecksRefused.inc({ reason })
  })

  const apiKeyCache = new Map<string, { key: { id: string, name: string }, at: number }>()
  // unknown keys are remembered apart, so a flood of wrong keys cannot push the real ones out
  const apiKeyMisses = new Map<string, number>()
  const usedKeys = new Set<string>()
  const lastUsed = setInterval(() => {
    const ids = [...usedKeys]
    usedKeys.clear()
    touchApiKeys(pool, ids).catch(err => nodeLog.warn({ err: err.message }, 'recording API key use failed'))
  }, LAST_USED_FLUSH_MS)
  lastUsed.unref()

  let accepting = true
  const readiness = async (): Promise<Readiness> => {
    const checks: Readiness['checks'] = {}
    try {
      let timer: NodeJS.Timeout | undefined
      const { rows } = await Promise.race([
        pool.query<{ name: string }>('select name from schema_migrations'),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer from the database within ${READY_DB_TIMEOUT_MS} ms`)), READY_DB_TIMEOUT_MS)
        })
      ]).finally(() => clearTimeout(timer))
      const have = new Set(rows.map(r => r.name))
      const missing = migrationNames.filter(n => !have.has(n))
      checks.database = { ok: true }
      checks.migrations = missing.length === 0 ? { ok: true } : { ok: false, detail: `not applied: ${missing.join(', ')}` }
    } catch (err) {
      checks.database = { ok: false, detail: (err as Error).message }
      checks.migrations = { ok: false, detail: 'database unreachable' }
    }
    checks.broker = broker.isListening ? { ok: true } : { ok: false, detail: 'MQTT listener closed' }
    checks.accepting = accepting ? { ok: true } : { ok: false, detail: 'shutting down' }
    return { ready: Object.values(checks).every(c => c.ok), checks }
  }

  const endSession = (deviceId: string): Promise<void> => persistence.cleanSubscriptions({ id: deviceId })
  const adminUi = createAdmin({
    pool,
    log: nodeLog,
    passwords,
    tokens,
    engine: deliveryEngine,
    messages: messageService,
    onApiKeyRevoked: () => apiKeyCache.clear(),
    endSession,
    accepting: () => accepting
  })
  const api = createApi({
    adminUi,
    pool,
    log: nodeLog,
    tokens,
    engine: deliveryEngine,
    endSession,
    messages: messageService,
    readiness,
    accepting: () => accepting,
    metrics,
    metricsToken: config.metricsToken,
    trustProxy: config.trustProxy,
    onApiKeyRevoked: () => apiKeyCache.clear(),
    auth: {
      passwords,
      onApiKeyUsed: id => usedKeys.add(id),
      onApiKeyFailure: reason => metrics.apiKeyFailures.inc({ reason }),
      findApiKey: async hash => {
        const now = Date.now()
        const cached = apiKeyCache.get(hash)
        if (cached && now - cached.at < API_KEY_CACHE_MS) return cached.key
        const missed = apiKeyMisses.get(hash)
        if (missed !== undefined && now - missed < API_KEY_CACHE_MS) return undefined
        const row = await findActiveApiKeyByHash(pool, hash)
        if (!row) {
          if (apiKeyMisses.size >= API_KEY_CACHE_ENTRIES) apiKeyMisses.clear()
          apiKeyMisses.set(hash, now)
          return undefined
        }
        const key = { id: row.id, name: row.name }
        if (apiKeyCache.size >= API_KEY_CACHE_ENTRIES) apiKeyCache.clear()
        apiKeyCache.set(hash, { key, at: now })
        return key
      }
    }
  })

  const http = createServer(httpServerOptions(deps.httpTimeouts ?? HTTP_TIMEOUTS), api)
  // idle keep-alive sockets of backends are reused for many sends
  http.keepAliveTimeout = 65_000
  // once shutting down, every answer closes its connection
  http.prependListener('request', (_req, res) => { if (!accepting) res.setHeader('connection', 'close') })
  broker.attachWebSocket(http)
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(config.port, config.host, () => resolve())
  })
  const port = (http.address() as AddressInfo).port
  const mqttTcpPort = config.mqttPort !== undefined ? await broker.listenTcp(config.mqttPort, config.host) : undefined

  const metricsHttp = config.metricsPort !== undefined ? await serveMetrics(metrics, config.metricsPort, config.host, deps.httpTimeouts ?? HTTP_TIMEOUTS) : undefined
  const maintenance = new Maintenance(pool, nodeLog, nodeId, expired => metrics.deliveries.inc({ status: 'expired' }, expired))
  maintenance.start()

  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host
  const url = `http://${host}:${port}`
  nodeLog.info({ url, mqtt: `${url.replace('http', 'ws')}/mqtt`, mqttTcpPort }, 'herald ready')

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      accepting = false
      nodeLog.info('shutting down')
      // admin pages' event streams never end on their own: end them so the HTTP server can close
      adminUi.close()
      const closeHttp = new Promise<void>(resolve => http.close(() => resolve()))
      // a keep-alive connection busy now (a send being committed) is idle a moment later, and
      // http.close() would wait keepAliveTimeout (65 s) for it: keep closing idle ones until done
      http.closeIdleConnections()
      const idleSweep = setInterval(() => http.closeIdleConnections(), 50)
      await acceptor.idle()
      await broker.close()
      // a connection that never sent a request is not idle to Node and would hold http.close()
      // until headersTimeout (60 s): once requests in flight had their grace period, close them all
      let grace: NodeJS.Timeout | undefined
      await Promise.race([closeHttp, new Promise<void>(resolve => { grace = setTimeout(resolve, HTTP_DRAIN_MS) })])
      clearTimeout(grace)
      http.closeAllConnections()
      await closeHttp
      clearInterval(idleSweep)
      metricsHttp?.close()
      maintenance.stop()
      clearInterval(lastUsed)
      await writer.close()
      await disconnects.flush()
      await touchApiKeys(pool, [...usedKeys]).catch(() => {})
      await releaseDeadNodes(pool, NODE_STALE_SECONDS, nodeId).catch(() => {})
      if (!deps.pool) await pool.end()
      nodeLog.info('stopped')
    })()
    return stopping
  }

  return { http, url, mqttTcpPort, metricsPort: metricsHttp ? (metricsHttp.address() as AddressInfo).port : undefined, firstStart, nodeId, stop }
}

async function deviceTokens (config: Readonly<Config>, pool: Pool): Promise<DeviceTokens> {
  if (config.jwtPublicKey) return new DeviceTokens({ kind: 'keypair', publicKey: config.jwtPublicKey, privateKey: config.jwtPrivateKey })
  const secret = config.jwtSecret ?? (await getOrCreateSetting(pool, 'jwt_secret', generateJwtSecret)).value
  return new DeviceTokens({ kind: 'secret', secret })
}

async function adminPassword (config: Readonly<Config>, pool: Pool, firstStart: FirstStart): Promise<string> {
  if (config.adminPassword) return hashPassword(config.adminPassword)
  let generated: string | undefined
  const { value, created } = await getOrCreateSetting(pool, 'admin_password_hash', async () => {
    generated = generatePassword()
    return hashPassword(generated)
  })
  if (created) firstStart.adminPassword = generated
  return value
}

async function seedApiKeys (config: Readonly<Config>, pool: Pool, firstStart: FirstStart): Promise<void> {
  if (config.apiKey) {
    await ensureApiKey(pool, 'API_KEY', config.apiKey.slice(0, KEY_PREFIX_LENGTH), hashApiKey(config.apiKey))
    return
  }
  // a first start with no key at all gets one, shown once, so the printed curl works
  if (await countApiKeys(pool) > 0) return
  const key = generateApiKey()
  await insertApiKey(pool, 'bootstrap', key.slice(0, KEY_PREFIX_LENGTH), hashApiKey(key))
  firstStart.apiKey = key
}

/** Collects ids and writes them in one statement per flush. */
class Batch<T> {
  private items: T[] = []
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

  constructor (private readonly write: (items: T[]) => Promise<void>, private readonly log: Logger, private readonly what: string, private readonly delayMs = 50) {}

  add (item: T): void {
    this.items.push(item)
    this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush() }, this.delayMs)
  }

  async flush (): Promise<void> {
    while (this.running) await this.running
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.items.length === 0) return
    const items = this.items
    this.items = []
    this.running = this.write(items).catch(err => this.log.warn({ err: (err as Error).message, count: items.length }, `${this.what} failed`))
    await this.running
    this.running = undefined
  }
}

/** METRICS_PORT: /metrics alone, without credentials, for a scraper on a private network. */
async function serveMetrics (metrics: Metrics, port: number, host: string, timeouts: HttpTimeouts): Promise<Server> {
  const app = express()
  app.disable('x-powered-by')
  app.use(metricsRouter(metrics, (_req, _res, next) => next()))
  const server = createServer(httpServerOptions(timeouts), app)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return server
}
