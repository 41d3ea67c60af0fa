// A load-generator process: real mqtt.js devices over WebSocket, and senders (keep-alive HTTP
// to Herald's REST API, or an MQTT QoS 1 publisher for the baselines). Driven over IPC by
// bench/lib/loadgen.ts; it exits when its parent goes away.
import http from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import mqtt, { type MqttClient } from 'mqtt'
import jwt from 'jsonwebtoken'
import { devicePayload, heraldBody } from './payload.js'
import type {
  CollectResult, ConnectRequest, ConnectResult, Request, SendRequest, SendResult, TrackRequest, WorkerEvent
} from './protocol.js'

const now = (): number => performance.timeOrigin + performance.now()
const TOKEN_TTL_S = 24 * 3600

const clients = new Map<string, MqttClient>()
/** per device connected with `urls`: the index of the server process it is connected to */
const processOf = new Map<string, number>()
let stopping = false

// ---- receiving -----------------------------------------------------------------------------

/** per device: the bench ids it received */
const seen = new Map<string, Set<number>>()
let expected = Infinity
let unique = 0
let duplicates = 0
let firstAt = 0
let lastAt = 0
let keepSamples = false
let latencies: number[] = []
let sentAtLatencies: number[] = []
const emptySplit = (): { latencies: number[], sentAtLatencies: number[] } => ({ latencies: [], sentAtLatencies: [] })
let byProcess = { same: emptySplit(), other: emptySplit() }
let doneReported = false
let lost = 0
let lostReported = 0
const eventLoop = monitorEventLoopDelay({ resolution: 5 })
eventLoop.enable()
let trackCpu = process.cpuUsage()
let trackWall = performance.now()

function onMessage (deviceId: string, payload: Buffer): void {
  const at = now()
  let p: { data?: { b?: number, t?: number, n?: number }, sentAt?: string }
  try { p = JSON.parse(payload.toString()) } catch { return }
  const b = p.data?.b
  if (typeof b !== 'number') return
  let set = seen.get(deviceId)
  if (!set) seen.set(deviceId, set = new Set())
  if (set.has(b)) { duplicates++; return }
  set.add(b)
  unique++
  if (firstAt === 0) firstAt = at
  lastAt = at
  if (keepSamples) {
    const node = processOf.get(deviceId)
    const split = node === undefined ? undefined : byProcess[p.data?.n === node ? 'same' : 'other']
    if (typeof p.data?.t === 'number') {
      latencies.push(at - p.data.t)
      split?.latencies.push(at - p.data.t)
    }
    if (typeof p.sentAt === 'string') {
      const fromAccept = Date.now() - Date.parse(p.sentAt)
      sentAtLatencies.push(fromAccept)
      split?.sentAtLatencies.push(fromAccept)
    }
  }
  if (!doneReported && unique >= expected) {
    doneReported = true
    emit({ event: 'done', at: lastAt, unique })
  }
}

function track ({ expected: n, samples }: TrackRequest): void {
  seen.clear()
  expected = n
  unique = 0
  duplicates = 0
  firstAt = 0
  lastAt = 0
  keepSamples = samples
  latencies = []
  sentAtLatencies = []
  byProcess = { same: emptySplit(), other: emptySplit() }
  doneReported = false
  lost = 0
  lostReported = 0
  eventLoop.reset()
  trackCpu = process.cpuUsage()
  trackWall = performance.now()
  if (n <= 0) { doneReported = true; emit({ event: 'done', at: now(), unique: 0 }) }
}

/** Lowers (or raises) the count `done` waits for, e.g. to what a time-bounded sender got accepted. */
function expect (n: number): void {
  expected = n
  if (!doneReported && unique >= expected) {
    doneReported = true
    emit({ event: 'done', at: lastAt, unique })
  }
}

const samplesOf = (s: { latencies: number[], sentAtLatencies: number[] }): {
  latencies: Float64Array, sentAtLatencies: Float64Array
} => ({ latencies: Float64Array.from(s.latencies), sentAtLatencies: Float64Array.from(s.sentAtLatencies) })

function collect (): CollectResult {
  const cpu = process.cpuUsage(trackCpu)
  const ms = (ns: number): number => Number.isFinite(ns) ? ns / 1e6 : NaN
  return {
    unique,
    duplicates,
    firstAt,
    lastAt,
    latencies: keepSamples ? Float64Array.from(latencies) : undefined,
    sentAtLatencies: keepSamples ? Float64Array.from(sentAtLatencies) : undefined,
    byProcess: keepSamples && processOf.size > 0
      ? { same: samplesOf(byProcess.same), other: samplesOf(byProcess.other) }
      : undefined,
    eventLoop: { p50: ms(eventLoop.percentile(50)), p99: ms(eventLoop.percentile(99)), max: ms(eventLoop.max) },
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs: performance.now() - trackWall,
    lost
  }
}

// ---- devices -------------------------------------------------------------------------------

async function connect (req: ConnectRequest): Promise<ConnectResult> {
  const { spec } = req
  const started = performance.now()
  const errors: string[] = []
  let connected = 0
  let failed = 0
  let next = spec.from
  const exp = Math.floor(Date.now() / 1000) + TOKEN_TTL_S
  const one = async (i: number): Promise<void> => {
    const clientId = `${spec.idPrefix}${i}`
    const user = `${spec.userPrefix}${i}`
    const password = jwt.sign({ sub: user, exp }, spec.secret, { algorithm: 'HS256' })
    // several processes: device i connects to urls[i mod length], round robin
    const node = req.urls ? i % req.urls.length : undefined
    try {
      const client = await open(req, node === undefined ? req.url : req.urls![node], clientId, password)
      if (node !== undefined) processOf.set(clientId, node)
      const topics = spec.topics.map(t => t.replace('{user}', user))
      if (topics.length > 0) {
        const granted = await new Promise<Array<{ qos: number }>>((resolve, reject) => {
          client.subscribe(topics, { qos: 1 }, (err, g) => err ? reject(err) : resolve(g ?? []))
        })
        const refused = granted.filter(g => g.qos === 128)
        if (refused.length > 0) throw new Error(`SUBACK refused ${refused.length} of ${topics.length} filters`)
      }
      connected++
    } catch (err) {
      failed++
      if (errors.length < 5) errors.push(`${clientId}: ${(err as Error).message}`)
    }
  }
  const lanes = Array.from({ length: Math.min(req.concurrency, spec.to - spec.from) }, async () => {
    while (next < spec.to) await one(next++)
  })
  await Promise.all(lanes)
  return { connected, failed, errors, ms: performance.now() - started }
}

function open (req: ConnectRequest, url: string, clientId: string, password: string): Promise<MqttClient> {
  clients.get(clientId)?.end(true)
  const client = mqtt.connect(url, {
    clientId,
    username: 'device',
    password,
    clean: req.clean,
    protocolVersion: 4,
    keepalive: req.keepalive,
    reconnectPeriod: 0,
    connectTimeout: 60_000,
    resubscribe: false,
    wsOptions: req.localAddress ? { localAddress: req.localAddress } : undefined
  })
  clients.set(clientId, client)
  client.on('message', (_topic, payload) => onMessage(clientId, payload))
  return new Promise((resolve, reject) => {
    let settled = false
    client.once('connect', () => { settled = true; resolve(client) })
    client.on('error', err => { if (!settled) { settled = true; reject(err) } })
    client.on('close', () => {
      if (!settled) { settled = true; reject(new Error('closed before CONNACK')); return }
      const disconnecting = (client as unknown as { disconnecting: boolean }).disconnecting
      if (clients.get(clientId) !== client || stopping || disconnecting) return
      clients.delete(clientId)
      lost++
      // report the first loss at once, then at most one report per thousand
      if (lost === 1 || lost - lostReported >= 1000) {
        lostReported = lost
        emit({ event: 'lost', count: lost, reason: `${clientId} closed by the server` })
      }
    })
  })
}

async function disconnect ({ idPrefix }: { idPrefix?: string }): Promise<{ closed: number }> {
  const closing: Array<Promise<void>> = []
  for (const [id, client] of clients) {
    if (idPrefix !== undefined && !id.startsWith(idPrefix)) continue
    clients.delete(id)
    processOf.delete(id)
    closing.push(new Promise<void>(resolve => {
      const timer = setTimeout(() => { client.end(true); resolve() }, 5_000)
      client.end(false, {}, () => { clearTimeout(timer); resolve() })
    }))
  }
  await Promise.all(closing)
  return { closed: closing.length }
}

// ---- sending -------------------------------------------------------------------------------

interface Item { to: unknown, topic: string, b: number }

function items (req: SendRequest): { count: number, at: (i: number) => Item } {
  const plan = req.plan
  switch (plan.kind) {
    case 'user-rr': {
      const n = plan.users.to - plan.users.from
      return {
        count: plan.count,
        at: i => {
          const user = `${plan.users.prefix}${plan.users.from + (i % n)}`
          return { to: { user }, topic: `users/${user}/inbox`, b: plan.bBase + i }
        }
      }
    }
    case 'topic':
      return {
        count: plan.count,
        at: i => ({ to: { topic: plan.topic }, topic: `topics/${plan.topic}`, b: plan.bBase + i })
      }
    case 'users-one': {
      const { prefix, from, to } = plan.users
      const users = Array.from({ length: to - from }, (_, k) => `${prefix}${from + k}`)
      return { count: 1, at: () => ({ to: { users }, topic: '', b: plan.b }) }
    }
    case 'users-each':
      return {
        count: plan.users.to - plan.users.from,
        at: i => ({ to: undefined, topic: `users/${plan.users.prefix}${plan.users.from + i}/inbox`, b: plan.b })
      }
  }
}

async function send (req: SendRequest): Promise<SendResult> {
  const plan = items(req)
  const at = plan.at
  let count = plan.count
  const transport = req.via === 'http' ? await httpTransport(req) : await mqttTransport(req)
  const unit = req.via === 'http' && req.batch !== undefined ? req.batch : 1
  // several processes: request r goes to process route(r) (see SendRequest.spread)
  const spread = req.via === 'http' ? req.spread : undefined
  const route = (r: number): number => spread === undefined
    ? 0
    : Math.floor(r / Math.max(1, Math.floor(spread.every / unit))) % spread.urls.length
  let requests = 0
  const result: SendResult = {
    sent: 0,
    ok: 0,
    failed: 0,
    statuses: {},
    errors: [],
    ids: [],
    firstAt: 0,
    lastAt: 0,
    slip: { p50: 0, p99: 0, max: 0 }
  }
  const slips: number[] = []
  let inflight = 0
  let issued = 0
  let finished = 0
  const start = performance.now()
  try {
    await new Promise<void>(resolve => {
      let timer: NodeJS.Timeout | undefined
      const pump = (): void => {
        const elapsed = performance.now() - start
        if (req.maxMs !== undefined && elapsed >= req.maxMs && issued < count) {
          // out of time: send nothing more; finish when what is in flight has finished
          count = issued
          if (finished === count) { clearTimeout(timer); resolve() }
          return
        }
        const due = req.rate === undefined ? count : Math.min(count, Math.floor(elapsed * req.rate / 1000) + 1)
        while (issued < due && inflight < req.concurrency) {
          // one request carries `size` messages: 1, or up to `batch`
          const first = issued
          const size = Math.min(unit, due - issued)
          issued += size
          const batch: Item[] = []
          for (let i = first; i < first + size; i++) {
            if (req.rate !== undefined) slips.push(performance.now() - (start + i * 1000 / req.rate))
            batch.push(at(i))
          }
          inflight++
          const t = now()
          if (result.firstAt === 0) result.firstAt = t
          result.sent += size
          transport.send(batch, t, req.pad, route(requests++)).then(outcome => {
            if (outcome.ok) result.ok += size
            else {
              result.failed += size
              if (result.errors.length < 5) result.errors.push(outcome.error ?? 'failed')
            }
            if (outcome.status !== undefined) {
              result.statuses[outcome.status] = (result.statuses[outcome.status] ?? 0) + 1
            }
            if (outcome.ids !== undefined && req.collectIds) result.ids.push(...outcome.ids)
          }).finally(() => {
            inflight--
            finished += size
            result.lastAt = now()
            if (finished === count) { clearTimeout(timer); resolve() } else pump()
          })
        }
        if (req.rate !== undefined && issued < count && timer === undefined) {
          timer = setTimeout(() => { timer = undefined; pump() }, 1)
        }
      }
      if (count === 0) resolve()
      else pump()
    })
  } finally {
    await transport.close()
  }
  if (slips.length > 0) {
    slips.sort((a, b) => a - b)
    result.slip = {
      p50: slips[Math.floor(slips.length * 0.5)],
      p99: slips[Math.min(slips.length - 1, Math.floor(slips.length * 0.99))],
      max: slips[slips.length - 1]
    }
  }
  return result
}

interface Outcome { ok: boolean, status?: number, ids?: string[], error?: string }
/** Sends one message, or (http with `batch`) several in one request; `n`: through process n of `spread` (http). */
interface Transport {
  send: (items: Item[], t: number, pad: number, n: number) => Promise<Outcome>
  close: () => Promise<void>
}

async function httpTransport (req: SendRequest): Promise<Transport> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: req.concurrency, maxFreeSockets: req.concurrency })
  const bases = req.spread?.urls ?? [req.url]
  const single = bases.map(u => new URL('/v1/messages', u))
  const batch = bases.map(u => new URL('/v1/messages/batch', u))
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${req.apiKey}` }
  return {
    send: (items, t, pad, n) => new Promise<Outcome>(resolve => {
      const isBatch = req.batch !== undefined
      const body = isBatch
        ? `{"messages":[${items.map(item => heraldBody(item.to, item.b, t, pad, n)).join(',')}]}`
        : heraldBody(items[0].to, items[0].b, t, pad, n)
      const options = { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }
      const r = http.request(isBatch ? batch[n] : single[n], options, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          if (res.statusCode === 202) {
            let ids: string[] | undefined
            if (req.collectIds) {
              try {
                const answer = JSON.parse(text)
                ids = isBatch ? answer.messages.map((m: { id: string }) => m.id) : [answer.id]
              } catch {}
            }
            resolve({ ok: true, status: 202, ids })
          } else resolve({ ok: false, status: res.statusCode, error: `HTTP ${res.statusCode}: ${text.slice(0, 200)}` })
        })
        res.on('error', err => resolve({ ok: false, error: err.message }))
      })
      r.on('error', err => resolve({ ok: false, error: err.message }))
      r.end(body)
    }),
    close: async () => { agent.destroy() }
  }
}

async function mqttTransport (req: SendRequest): Promise<Transport> {
  const client = mqtt.connect(req.url, {
    clientId: `bench-pub-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    username: 'publisher',
    password: 'x',
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 30_000
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('publisher closed before CONNACK')))
  })
  client.on('error', () => {})
  return {
    send: ([item], t, pad) => new Promise<Outcome>(resolve => {
      const topicName = item.topic.startsWith('topics/') ? item.topic.slice('topics/'.length) : undefined
      client.publish(item.topic, devicePayload(item.b, t, pad, topicName), { qos: 1 }, err => {
        resolve(err ? { ok: false, error: err.message } : { ok: true })
      })
    }),
    close: () => new Promise<void>(resolve => {
      const timer = setTimeout(() => { client.end(true); resolve() }, 5_000)
      client.end(false, {}, () => { clearTimeout(timer); resolve() })
    })
  }
}

// ---- IPC -----------------------------------------------------------------------------------

function emit (e: WorkerEvent): void {
  process.send?.(e)
}

process.on('message', (msg: { id: number } & Request) => {
  const handle = async (): Promise<unknown> => {
    switch (msg.op) {
      case 'connect': return await connect(msg.args)
      case 'disconnect': return await disconnect(msg.args)
      case 'track': return track(msg.args)
      case 'expect': return expect(msg.args.expected)
      case 'collect': return collect()
      case 'send': return await send(msg.args)
    }
  }
  handle().then(
    result => process.send?.({ id: msg.id, result }),
    err => process.send?.({ id: msg.id, error: (err as Error).stack ?? String(err) })
  )
})

// the orchestrator went away: close everything and leave
process.on('disconnect', () => {
  stopping = true
  for (const c of clients.values()) c.end(true)
  setTimeout(() => process.exit(0), 200).unref()
})
process.on('SIGTERM', () => {
  stopping = true
  process.exit(0)
})
process.send?.({ ready: true })
