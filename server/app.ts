import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import express from 'express'
import type { Config } from './config.js'
import type { Logger } from './log.js'
import { Metrics } from './metrics.js'
import { FlushBatch } from './db/batching.js'
import { createPool, type Pool } from './db/pool.js'
import { expectedMigrations as shippedMigrations, migrate } from './db/migrate.js'
import { DeviceTokens } from './auth/deviceTokens.js'
import { PasswordLimiter, type PasswordPolicy } from './auth/passwordLimiter.js'
import { generateJwtSecret, generatePassword, hashPassword } from './auth/secrets.js'
import { getOrCreateSetting } from './store/settings.js'
import { hostname } from 'node:os'
import {
  claimDevice, heartbeatNode, markDisconnected, markGoneNodes, type DeviceConnection, type NodeInfo
} from './store/devices.js'
import { addLiveSubscription, removeLiveSubscriptions, topicSubscribers } from './store/topicSubscriptions.js'
import { countPendingDeliveries, discardDeviceQueue } from './store/deliveries.js'
import { PgPersistence } from './broker/pgPersistence.js'
import { Broker } from './broker/broker.js'
import { DeliveryEngine } from './delivery/engine.js'
import { DeliveryStateWriter } from './delivery/stateWriter.js'
import { Maintenance, NODE_STALE_SECONDS } from './delivery/maintenance.js'
import { ApiKeyService } from './services/apiKeys.js'
import { DeviceService } from './services/devices.js'
import { MessageService } from './services/messages.js'
import { Cluster } from './services/cluster.js'
import { WebhookService } from './services/webhooks.js'
import { WebhookSender, type WebhookSenderOptions } from './webhooks/sender.js'
import { HERALD_VERSION } from './version.js'
import { createApi } from './api/router.js'
import { metricsRouter } from './api/metrics.js'
import { createAdmin } from './admin/index.js'

/** Secrets generated on this start; shown once by the entry file, never stored in clear. */
export interface FirstStart {
  adminPassword?: string
  apiKey?: string
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
  /** tests make the admin password's hash cheaper (auth/secrets.ts PASSWORD_HASH_COST) */
  passwordHashCost?: number
  /** tests shorten the webhook retries and timeouts to watch them act */
  webhooks?: Partial<WebhookSenderOptions>
}

/** One named step of a shutdown: its name is logged when it fails, and the next steps still run. */
export interface StopStep { name: string, run: () => unknown }

/** Herald built and ready, with no port open: `listen` opens them. */
export interface HeraldService {
  readonly nodeId: string
  readonly firstStart: FirstStart
  readonly metrics: Metrics
  /** the whole HTTP surface: REST API, admin UI, health, metrics */
  readonly handleRequest: RequestListener
  /** serves one MQTT connection over a byte stream (a socket, or an in-memory duplexPair end) */
  readonly handleMqtt: (stream: Duplex) => void
  /** MQTT over WebSocket at /mqtt on this HTTP server */
  readonly attachWebSocket: (http: Server) => void
  readonly listenMqttTcp: (port: number, host: string) => Promise<number>
  /** in order: before the HTTP server closes (refuse work, finish sends, close the broker) and after */
  readonly stopSteps: { beforeHttp: StopStep[], afterHttp: StopStep[] }
  readonly log: Logger
}

export interface Herald {
  readonly http: Server
  readonly url: string
  readonly mqttTcpPort: number | undefined
  /** the separate /metrics port, when METRICS_PORT is set */
  readonly metricsPort: number | undefined
  readonly firstStart: FirstStart
  readonly nodeId: string
  /** Stops accepting, closes the broker, flushes delivery state, closes the pool: the steps of stopSteps. */
  stop: () => Promise<void>
}

// on stop, how long HTTP requests in flight may take before their connections are closed
const HTTP_DRAIN_MS = 2_000
// an idle keep-alive connection of a backend is reused for many sends; past a typical load
// balancer's idle timeout (60 s), so that the balancer, not Herald, closes it first
const KEEP_ALIVE_MS = 65_000

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

/**
 * Builds Herald from a parsed config without opening a port: migrates the database, loads the
 * secrets, and wires the store, the broker, delivery, the services and the HTTP surface. Only
 * the entry file reads the environment.
 */
export async function createHerald (config: Readonly<Config>, deps: HeraldDeps): Promise<HeraldService> {
  if (!config.databaseUrl && !deps.pool) throw new Error('createHerald needs config.databaseUrl or a pool')
  const pool = deps.pool ??
    createPool({
      connectionString: config.databaseUrl!, max: config.databasePoolSize, preparedStatements: config.preparedStatements
    })
  const nodeId = `node-${randomUUID()}`
  const log = deps.log.child({ nodeId })

  const { applied } = await migrate(pool)
  if (applied.length > 0) log.info({ applied }, 'migrations applied')
  const firstStart: FirstStart = {}
  const tokens = await deviceTokens(config, pool)
  const adminPasswordHash = await adminPassword(config, pool, firstStart, deps.passwordHashCost)
  const nodeInfo = (connections: number): NodeInfo =>
    ({ version: HERALD_VERSION, hostname: hostname(), pid: process.pid, connections })
  await registerNode(pool, nodeId, nodeInfo(0), log)

  const metrics = new Metrics(nodeId)
  const passwords = new PasswordLimiter({
    pool,
    log,
    adminPasswordHash,
    policy: deps.passwordPolicy,
    onChecked: result => metrics.passwordChecks.inc({ result }),
    onLimited: reason => metrics.passwordChecksRefused.inc({ reason })
  })

  const writer = new DeliveryStateWriter(pool, log, metrics)
  const engine = deliveryEngine(config, pool, writer, log, metrics, nodeId)
  const signals = new Cluster({ pool, nodeId, log, engine, forgetApiKeys: () => apiKeys.forgetCached() })
  // listening before the first device connects: no signal for a device here can be missed
  await signals.start()
  const apiKeys = new ApiKeyService(pool, log, () => signals.signalAll({ kind: 'api-key-revoked' }))
  firstStart.apiKey = await apiKeys.seed(config.apiKey)
  const persistence = new PgPersistence({ pool, outgoingAcks: (client, messageId) => engine.ack(client, messageId) })
  const disconnects = new FlushBatch<DeviceConnection>(ended => markDisconnected(pool, ended), log,
    'marking devices offline')
  const core: Core = { pool, nodeId, log, metrics }
  const broker = deviceBroker(core, { tokens, persistence, writer, engine, signals, disconnects }, deps)
  await broker.start()

  const messages = new MessageService({
    pool,
    nodeId,
    log,
    engine,
    topicSubscribers: topic => topicSubscribers(pool, topic),
    metrics,
    maxBatchTopicDeliveries: deps.maxBatchTopicDeliveries
  })
  const devices = new DeviceService({
    pool,
    nodeId,
    engine,
    metrics,
    forgetSession: deviceId => persistence.cleanSubscriptions({ id: deviceId }),
    closeElsewhere: (node, deviceId) => signals.signalNode(node, { kind: 'ended', devices: [deviceId] })
  })
  metrics.observe({
    connectedDevices: () => broker.connectedCount,
    bufferedDeliveries: () => engine.bufferedDeliveries,
    pool,
    pendingDeliveries: () => countPendingDeliveries(pool)
  })

  const webhooks = new WebhookService(pool)
  const webhookSender = new WebhookSender({
    pool, log, metrics, isLeader: () => signals.isLeader, options: deps.webhooks
  })

  let accepting = true
  const expectedMigrations = await shippedMigrations()
  const adminUi = createAdmin({
    pool, log, nodeId, passwords, tokens, messages, devices, apiKeys, webhooks, accepting: () => accepting
  })
  const handleRequest = createApi({
    log,
    tokens,
    messages,
    devices,
    apiKeys,
    webhooks,
    adminUi,
    accepting: () => accepting,
    readiness: { pool, expectedMigrations, brokerListening: () => broker.isListening, accepting: () => accepting },
    metrics,
    metricsToken: config.metricsToken,
    trustProxy: config.trustProxy,
    auth: {
      identifyApiKey: hash => apiKeys.identify(hash),
      passwords,
      onApiKeyFailure: reason => metrics.apiKeyFailures.inc({ reason })
    }
  })

  const maintenance = new Maintenance({
    pool,
    log,
    nodeId,
    info: () => nodeInfo(engine.connectedDevices),
    connections: () => broker.connections(),
    isLeader: () => signals.isLeader,
    onExpired: expired => metrics.deliveries.inc({ status: 'expired' }, expired)
  })
  maintenance.start()
  webhookSender.start()

  return {
    nodeId,
    firstStart,
    metrics,
    log,
    handleRequest,
    handleMqtt: stream => broker.handle(stream),
    attachWebSocket: http => broker.attachWebSocket(http),
    listenMqttTcp: (port, host) => broker.listenTcp(port, host),
    stopSteps: {
      beforeHttp: [
        { name: 'refuse new work', run: () => { accepting = false } },
        // admin pages' event streams never end on their own: end them so the HTTP server can close
        { name: 'end admin event streams', run: () => adminUi.close() },
        { name: 'commit the sends accepted so far', run: () => messages.idle() },
        { name: 'close device connections', run: () => broker.close() }
      ],
      afterHttp: [
        { name: 'stop maintenance', run: () => maintenance.stop() },
        { name: 'stop sending webhooks', run: () => webhookSender.stop() },
        { name: 'write delivery state', run: () => writer.close() },
        { name: 'mark this node’s devices offline', run: () => disconnects.flush() },
        { name: 'record API key use', run: () => apiKeys.close() },
        { name: 'stop listening for other processes', run: () => signals.stop() },
        { name: 'mark this node gone', run: () => markGoneNodes(pool, NODE_STALE_SECONDS, { alsoNode: nodeId }) },
        { name: 'close the database pool', run: () => deps.pool ? undefined : pool.end() }
      ]
    }
  }
}

/** What every part of one process is built with. */
interface Core { pool: Pool, nodeId: string, log: Logger, metrics: Metrics }

interface BrokerParts {
  tokens: DeviceTokens
  persistence: PgPersistence
  writer: DeliveryStateWriter
  engine: DeliveryEngine
  signals: Cluster
  disconnects: FlushBatch<DeviceConnection>
}

/**
 * The MQTT broker, wired to the rest: a CONNECT claims the device (and tells the process that
 * held it before), subscriptions to broadcast topics are recorded for every process, a device's
 * channel opens when it is ready and closes when it goes, receipts go to the state writer.
 */
function deviceBroker ({ pool, nodeId, log, metrics }: Core, parts: BrokerParts,
  deps: Pick<HeraldDeps, 'maxKeepaliveSeconds'>): Broker {
  const { engine, writer, signals, disconnects } = parts
  return new Broker({
    persistence: parts.persistence,
    tokens: parts.tokens,
    log,
    claimDevice: async (deviceId, userId, persistent, connectionId) => {
      const result = await claimDeviceSession(pool, nodeId, { deviceId, connectionId }, userId, persistent)
      // [MQTT-3.1.4-2]: the device's older connection, on another process, is closed there
      if (result.ok && result.previousNode !== undefined) {
        signals.signalNode(result.previousNode, { kind: 'moved', devices: [deviceId] }).catch(err =>
          log.warn({ err: (err as Error).message, deviceId }, 'telling the previous process of a takeover failed'))
      }
      return result
    },
    recordBroadcastSubscription: (deviceId, topic) => addLiveSubscription(pool, nodeId, deviceId, topic),
    forgetBroadcastSubscriptions: (deviceId, which) => removeLiveSubscriptions(pool, nodeId, deviceId, which),
    recordReceipt: receipt => writer.receipt({ ...receipt, at: new Date() }),
    onAuthFailure: reason => metrics.authFailures.inc({ reason }),
    onReady: client => {
      metrics.connects.inc()
      engine.attach(client)
    },
    onGone: (client, connectionId) => {
      metrics.disconnects.inc()
      engine.detach(client)
      if (connectionId !== undefined) disconnects.add({ deviceId: client.id, connectionId })
    },
    maxKeepaliveSeconds: deps.maxKeepaliveSeconds
  }, log)
}

/**
 * Opens the ports of a built Herald: HTTP (REST, admin UI, MQTT over WebSocket), and MQTT over
 * TCP and a metrics-only port when configured.
 */
export async function listen (
  service: HeraldService,
  config: Readonly<Config>,
  timeouts = HTTP_TIMEOUTS
): Promise<Herald> {
  const { log } = service
  let stopping = false
  const http = createServer(httpServerOptions(timeouts), service.handleRequest)
  http.keepAliveTimeout = KEEP_ALIVE_MS
  // once shutting down, every answer closes its connection
  http.prependListener('request', (_req, res) => { if (stopping) res.setHeader('connection', 'close') })
  service.attachWebSocket(http)
  await listenOn(http, config.port, config.host)
  const port = (http.address() as AddressInfo).port
  const mqttTcpPort = config.mqttPort !== undefined
    ? await service.listenMqttTcp(config.mqttPort, config.host)
    : undefined
  const metricsHttp = config.metricsPort !== undefined
    ? await serveMetrics(service, config.metricsPort, config.host, timeouts)
    : undefined

  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host
  const url = `http://${host}:${port}`
  log.info({ url, mqtt: `${url.replace('http', 'ws')}/mqtt`, mqttTcpPort }, 'herald ready')

  let closeHttp: Promise<void> | undefined
  let idleSweep: NodeJS.Timeout | undefined
  const steps: StopStep[] = [
    {
      name: 'stop taking HTTP connections',
      run: () => {
        stopping = true
        closeHttp = new Promise<void>(resolve => http.close(() => resolve()))
        // a keep-alive connection busy now (a send being committed) is idle a moment later, and
        // http.close() would wait keepAliveTimeout for it: keep closing idle ones until done
        http.closeIdleConnections()
        idleSweep = setInterval(() => http.closeIdleConnections(), 50)
      }
    },
    ...service.stopSteps.beforeHttp,
    {
      name: 'close HTTP connections',
      run: async () => {
        // a connection that never sent a request is not idle to Node and would hold http.close()
        // until headersTimeout: once requests in flight had their grace period, close them all
        let grace: NodeJS.Timeout | undefined
        await Promise.race([closeHttp, new Promise<void>(resolve => { grace = setTimeout(resolve, HTTP_DRAIN_MS) })])
        clearTimeout(grace)
        http.closeAllConnections()
        await closeHttp
        clearInterval(idleSweep)
        metricsHttp?.close()
      }
    },
    ...service.stopSteps.afterHttp
  ]

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= runStopSteps(steps, log)
    return stopped
  }
  const metricsPort = metricsHttp ? (metricsHttp.address() as AddressInfo).port : undefined
  return { http, url, mqttTcpPort, metricsPort, firstStart: service.firstStart, nodeId: service.nodeId, stop }
}

/** Builds and listens: what the entry file and the tests run. */
export async function startHerald (config: Readonly<Config>, deps: HeraldDeps): Promise<Herald> {
  return listen(await createHerald(config, deps), config, deps.httpTimeouts)
}

async function runStopSteps (steps: StopStep[], log: Logger): Promise<void> {
  log.info('shutting down')
  for (const step of steps) {
    try {
      await step.run()
    } catch (err) {
      log.warn({ err: (err as Error).message, step: step.name }, 'a shutdown step failed; going on with the next')
    }
  }
  log.info('stopped')
}

function httpServerOptions ({ headersMs, requestMs }: HttpTimeouts): ServerOptions {
  return { headersTimeout: headersMs, requestTimeout: requestMs, connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_MS }
}

function listenOn (server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
}

async function registerNode (pool: Pool, nodeId: string, info: NodeInfo, log: Logger): Promise<void> {
  await heartbeatNode(pool, nodeId, info)
  const released = await markGoneNodes(pool, NODE_STALE_SECONDS)
  if (released > 0) log.info({ devices: released }, 'marked devices of stopped servers offline')
}

function deliveryEngine (config: Readonly<Config>, pool: Pool, writer: DeliveryStateWriter, log: Logger,
  metrics: Metrics, nodeId: string): DeliveryEngine {
  // once per PUBACK: a bound child skips hashing the label set every time
  const deliveredCount = metrics.deliveries.labels({ status: 'delivered' })
  return new DeliveryEngine(pool, writer, log, {
    maxInflight: config.maxInflightPerDevice,
    stalledDeviceTimeoutMs: config.stalledDeviceTimeoutMs
  }, {
    delivered: latencyMs => {
      deliveredCount.inc()
      metrics.deliveryLatency.observe(latencyMs / 1000)
    },
    stalled: () => metrics.stalledDisconnects.inc()
  }, nodeId)
}

/** A device's CONNECT claims it for this node; a clean session starts with an empty queue. */
type Claim = ReturnType<typeof claimDevice>
async function claimDeviceSession (
  pool: Pool,
  nodeId: string,
  { deviceId, connectionId }: DeviceConnection,
  userId: string,
  persistent: boolean
): Claim {
  const result = await claimDevice(pool, deviceId, userId, persistent, nodeId, connectionId)
  if (result.ok && result.discardQueueUpTo !== undefined) {
    // a clean session starts empty: drop what an earlier session of this device left queued
    await discardDeviceQueue(pool, deviceId, result.discardQueueUpTo,
      result.discardedPersistentSession ? 'session-discarded' : 'clean-session-ended')
  }
  return result
}

async function deviceTokens (config: Readonly<Config>, pool: Pool): Promise<DeviceTokens> {
  if (config.jwtPublicKey) {
    return new DeviceTokens({ kind: 'keypair', publicKey: config.jwtPublicKey, privateKey: config.jwtPrivateKey })
  }
  const secret = config.jwtSecret ?? (await getOrCreateSetting(pool, 'jwt_secret', generateJwtSecret)).value
  return new DeviceTokens({ kind: 'secret', secret })
}

async function adminPassword (config: Readonly<Config>, pool: Pool, firstStart: FirstStart,
  cost?: number): Promise<string> {
  if (config.adminPassword) return hashPassword(config.adminPassword, cost)
  let generated: string | undefined
  const { value, created } = await getOrCreateSetting(pool, 'admin_password_hash', async () => {
    generated = generatePassword()
    return hashPassword(generated, cost)
  })
  if (created) firstStart.adminPassword = generated
  return value
}

/** METRICS_PORT: /metrics alone, without credentials, for a scraper on a private network. */
async function serveMetrics (
  service: HeraldService,
  port: number,
  host: string,
  timeouts: HttpTimeouts
): Promise<Server> {
  const app = express()
  app.disable('x-powered-by')
  app.use(metricsRouter(service.metrics, (_req, _res, next) => next()))
  const server = createServer(httpServerOptions(timeouts), app)
  await listenOn(server, port, host)
  return server
}
