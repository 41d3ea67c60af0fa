import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface MetricSources {
  connectedDevices: () => number
  /** deliveries held in device channels' memory (read ahead or awaiting PUBACK) */
  bufferedDeliveries: () => number
  pool: { totalCount: number, idleCount: number, waitingCount: number }
  pendingDeliveries: () => Promise<number>
}

// Counting pending deliveries reads an index; once in a while is enough for a dashboard.
const PENDING_CACHE_MS = 15_000

/**
 * Herald's Prometheus metrics. One registry per server instance (tests start several in one
 * process). Default process metrics (CPU, memory, event-loop delay, GC) come with it.
 */
export class Metrics {
  readonly registry = new Registry()

  private sources: MetricSources | undefined
  private pendingCache: { value: number, at: number } | undefined

  readonly connectedDevices = new Gauge({
    name: 'herald_connected_devices',
    help: 'Devices connected to this server now',
    registers: [this.registry],
    collect: () => { if (this.sources) this.connectedDevices.set(this.sources.connectedDevices()) }
  })

  readonly bufferedDeliveries = new Gauge({
    name: 'herald_buffered_deliveries',
    help: 'Deliveries held in memory by device connections (read ahead of sending, or awaiting PUBACK); ' +
      'bounded per device',
    registers: [this.registry],
    collect: () => { if (this.sources) this.bufferedDeliveries.set(this.sources.bufferedDeliveries()) }
  })

  readonly connects = new Counter({
    name: 'herald_device_connects_total',
    help: 'Device connections that passed authentication',
    registers: [this.registry]
  })

  readonly disconnects = new Counter({
    name: 'herald_device_disconnects_total',
    help: 'Device connections that ended',
    registers: [this.registry]
  })

  readonly stalledDisconnects = new Counter({
    name: 'herald_device_stalled_disconnects_total',
    help: 'Device connections closed because they stayed unwritable for STALLED_DEVICE_TIMEOUT_MS',
    registers: [this.registry]
  })

  readonly authFailures = new Counter({
    name: 'herald_device_auth_failures_total',
    help: 'Refused device connections, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  readonly passwordChecks = new Counter({
    name: 'herald_password_checks_total',
    help: 'Admin passwords hashed and compared (HTTP Basic and the login form), by result',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  readonly passwordChecksRefused = new Counter({
    name: 'herald_password_checks_refused_total',
    help: 'Admin password attempts answered 429 without a check, by reason (backoff, in-flight, busy)',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  readonly apiKeyFailures = new Counter({
    name: 'herald_api_key_failures_total',
    help: 'Requests refused for a missing or unknown API key, by reason (never rate limited)',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  readonly messagesAccepted = new Counter({
    name: 'herald_messages_accepted_total',
    help: 'Messages committed (answered 202)',
    registers: [this.registry]
  })

  readonly deliveriesQueued = new Counter({
    name: 'herald_deliveries_queued_total',
    help: 'Per-device deliveries created',
    registers: [this.registry]
  })

  readonly deliveries = new Counter({
    name: 'herald_deliveries_total',
    help: 'Per-device delivery outcomes recorded by this server, by status',
    labelNames: ['status'] as const,
    registers: [this.registry]
  })

  readonly webhookPosts = new Counter({
    name: 'herald_webhook_posts_total',
    help: 'Webhook POSTs sent by this server (the leader), by result: delivered, retry (failed, tried again later), ' +
      'failed (the endpoint failed for the whole retry window and was disabled)',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  readonly webhookEvents = new Counter({
    name: 'herald_webhook_events_total',
    help: 'Webhook events delivered (answered 2xx) by this server',
    registers: [this.registry]
  })

  readonly deliveryLatency = new Histogram({
    name: 'herald_delivery_latency_seconds',
    help: 'From a message being accepted to the device\'s PUBACK',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600, 3600, 86400],
    registers: [this.registry]
  })

  readonly pendingDeliveries = new Gauge({
    name: 'herald_pending_deliveries',
    help: 'Deliveries queued or sent, not yet delivered or ended (whole database, sampled)',
    registers: [this.registry],
    collect: async () => {
      if (!this.sources) return
      if (!this.pendingCache || Date.now() - this.pendingCache.at > PENDING_CACHE_MS) {
        try {
          this.pendingCache = { value: await this.sources.pendingDeliveries(), at: Date.now() }
        } catch {
          return // the database is away: keep the last value rather than fail the scrape
        }
      }
      this.pendingDeliveries.set(this.pendingCache.value)
    }
  })

  readonly dbBatchSize = new Histogram({
    name: 'herald_db_batch_size',
    help: 'Rows per batched database write, by kind',
    labelNames: ['kind'] as const,
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
    registers: [this.registry]
  })

  readonly dbBatchSeconds = new Histogram({
    name: 'herald_db_batch_seconds',
    help: 'Duration of batched database writes, by kind',
    labelNames: ['kind'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry]
  })

  readonly poolConnections = new Gauge({
    name: 'herald_db_pool_connections',
    help: 'Database pool connections, by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      const pool = this.sources?.pool
      if (!pool) return
      this.poolConnections.set({ state: 'total' }, pool.totalCount)
      this.poolConnections.set({ state: 'idle' }, pool.idleCount)
      this.poolConnections.set({ state: 'waiting' }, pool.waitingCount)
    }
  })

  /** `node`: every series carries the process' node id, so a scraper of several processes tells them apart */
  constructor (node?: string) {
    if (node !== undefined) this.registry.setDefaultLabels({ node })
    collectDefaultMetrics({ register: this.registry, prefix: 'herald_process_' })
  }

  /** Where the scrape-time gauges read from; set once the server is wired. */
  observe (sources: MetricSources): void {
    this.sources = sources
  }

  /** Times a batched write and records its size. */
  async timeBatch<T> (kind: string, rows: number, write: () => Promise<T>): Promise<T> {
    const end = this.dbBatchSeconds.startTimer({ kind })
    try {
      return await write()
    } finally {
      end()
      this.dbBatchSize.observe({ kind }, rows)
    }
  }
}
