// 7. Webhooks: what delivery webhooks cost the sends, and whether their events keep up (issue 11:
// "events are sent in batches so they keep up with 5,000 deliveries/s on this machine without
// slowing sends by more than 10 %").
// Herald only. Per run, one Herald with D online persistent devices gets N messages through
// `POST /v1/messages/batch` (as throughput's batch phase sends them) twice: once with no webhook
// endpoint, once with an endpoint registered for every event type that points at a receiver in
// the bench process (bench/lib/webhookReceiver.ts). The order alternates across runs, after an
// unmeasured warm-up send. Every message the devices got must have its message.delivered event.
import { eachRun, serverCpu, withSystem, type Ctx } from '../lib/context.js'
import { Worker } from '../lib/loadgen.js'
import { cpuMeter, now, sleep } from '../lib/proc.js'
import { median, percentile, Recorder, type ScenarioResult } from '../lib/report.js'
import { ADMIN_PASSWORD, API_KEY, JWT_SECRET, type System } from '../lib/systems.js'
import { WebhookReceiver } from '../lib/webhookReceiver.js'
import { WEBHOOK_EVENT_TYPES } from '../../server/webhooks/events.js'
import { loadgenCheck } from './throughput.js'

/** The issue's figures: events keep up with this many deliveries a second, sends slow by at most this much. */
const TARGET_EVENTS_PER_S = 5_000
const TARGET_SLOWDOWN_PCT = 10
/**
 * an unmeasured send with an endpoint before the two phases, so neither pays for a cold server: the first
 * fetch() of a process loads undici (~230 ms of CPU, ~8 µs a message of a 30,000-message phase, in a profile)
 */
const WARMUP_MESSAGES = 3_000

type Phase = 'off' | 'on'

export async function webhooks (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const N = ctx.sizes.webhookMessages
  const D = Math.max(1, ctx.sizes.webhookDevices)
  const B = ctx.sizes.batchSize
  const rec = new Recorder()
  const msgs = `${N.toLocaleString('en-US')} msgs to ${D} devices, batch requests of ${B}`
  rec.metric('slowdown', 'send slowdown with the endpoint (1 − with ÷ without)', '%', 'lower', 1)
  rec.metric('rateOff', `delivered msg/s, ${msgs}, no webhook endpoint`, 'msg/s', 'higher')
  rec.metric('rateOn', 'delivered msg/s, the same with the endpoint', 'msg/s', 'higher')
  rec.metric('events', 'webhook events/s, first send → last event received', 'events/s', 'higher')
  rec.metric('tail', 'last device receipt → last event received', 'ms', 'lower', 0)
  rec.metric('perPost', 'events per POST', 'events', 'info', 0)
  rec.metric('lagP50', 'delivery recorded (event timestamp) → event received, p50', 'ms', 'lower', 0)
  rec.metric('lagP99', 'delivery recorded → event received, p99', 'ms', 'lower', 0)
  rec.metric('cpuServerOff', 'server CPU per message, no endpoint', 'µs', 'lower')
  rec.metric('cpuServerOn', 'server CPU per message, with the endpoint', 'µs', 'lower')
  rec.metric('cpuPgOff', 'Postgres CPU per message, no endpoint', 'µs', 'lower')
  rec.metric('cpuPgOn', 'Postgres CPU per message, with the endpoint', 'µs', 'lower')
  rec.metric('cpuReceiver', 'bench process (webhook receiver), with the endpoint', '% of a core', 'info', 0)
  rec.metric('cpuSender', 'load generator: sender CPU', '% of a core', 'info', 0)
  rec.metric('cpuDevices', 'load generator: device CPU', '% of a core', 'info', 0)
  rec.metric('machineOff', 'machine busy, all cores, no endpoint', '%', 'info', 0)
  rec.metric('machine', 'machine busy, all cores, with the endpoint', '%', 'info', 0)
  rec.metric('otherOff', 'other processes on the machine, no endpoint', '% of a core', 'info', 0)
  rec.metric('otherOn', 'other processes on the machine, with the endpoint', '% of a core', 'info', 0)
  for (const m of rec.metrics.values()) for (const k of ['aedes', 'mosquitto'] as const) rec.na(m.key, k, 'no webhooks')

  const receiver = await WebhookReceiver.start()
  const sender = await Worker.start('s7-sender')
  const devices = await Worker.start('s7-device')
  try {
    await eachRun({ ...ctx, systems: ctx.systems.filter(k => k === 'herald') }, rec, '7 webhooks', async (_, run) => {
      await withSystem(ctx, 'herald', `s7-herald-r${run}`, async sys => {
        const ids = Array.from({ length: D }, (_, i) => `wh${run}-d${i}`)
        const conn = await devices.connect({
          url: sys.wsUrl,
          spec: {
            idPrefix: `wh${run}-d`,
            userPrefix: `wh${run}-u`,
            from: 0,
            to: D,
            topics: ['users/{user}/inbox'],
            secret: JWT_SECRET
          },
          clean: false,
          concurrency: Math.min(D, 20),
          keepalive: 60
        })
        if (conn.connected !== D) {
          throw new Error(`${D - conn.connected} of ${D} devices did not connect: ${conn.errors.join('; ')}`)
        }
        const phaseCtx = { ctx, rec, sys, sender, devices, receiver, run, D, ids }
        // the warm-up (with an endpoint, so its code, fetch's first load included, is warm too), then
        // run 1 (and every odd one) without the endpoint first, run 2 with it first…
        const order: Phase[] = run % 2 === 0 ? ['off', 'on'] : ['on', 'off']
        let sentSoFar = 0
        for (const [phase, count, measured] of [['on', Math.min(N, WARMUP_MESSAGES), false] as const,
          ...order.map(phase => [phase, N, true] as const)]) {
          const endpoint = phase === 'on' ? await registerEndpoint(sys, receiver) : undefined
          sentSoFar += await sendPhase(phaseCtx, sentSoFar, count, phase, measured)
          if (endpoint) await deleteEndpoint(sys, endpoint)
        }
        // this run's pair (a failed phase threw before this)
        const last = (key: string): number => rec.metrics.get(key)!.values.herald!.at(-1)!
        rec.add('slowdown', 'herald', (1 - last('rateOn') / last('rateOff')) * 100)
        await devices.disconnect()
      })
    })
  } finally {
    await Promise.all([sender.stop(), devices.stop(), receiver.close()])
  }
  if (ctx.env.postmasterPid === undefined) {
    rec.na('cpuPgOff', 'herald', 'Postgres not on this machine')
    rec.na('cpuPgOn', 'herald', 'Postgres not on this machine')
  }
  loadgenCheck(rec, ['cpuSender', 'cpuDevices', 'cpuReceiver'])
  const count = (n: number): string => n.toLocaleString('en-US')
  rec.notes.push(`Per run one Herald, ${D} online persistent devices (one per user, round robin), ` +
    `${ctx.sizes.batchConcurrency} requests of ${B} messages in flight; an unmeasured warm-up of ` +
    `${count(Math.min(N, WARMUP_MESSAGES))} messages with an endpoint (its events checked too), then ` +
    `${count(N)} with no webhook endpoint and ${count(N)} with one endpoint registered for all ` +
    `${WEBHOOK_EVENT_TYPES.length} event types (POST /v1/webhooks just before, deleted right after), in ` +
    'alternating order across runs (run 1 without first). Only message.delivered events occur here (the ' +
    'devices send no receipts). Slowdown = 1 − delivered msg/s with ÷ without, of the same run; delivered ' +
    'msg/s = messages ÷ (first send → last device receipt). CPU per message runs from the first send until ' +
    'every delivery is recorded in Postgres (and, with the endpoint, the last event received): the webhook ' +
    'work after the last receipt is in it.')
  rec.notes.push('The webhook receiver is an HTTP server in the bench process on 127.0.0.1 (answers 204, ' +
    'verifies each signature (HMAC-SHA256 with node:crypto), counts events by id; a repeated id is counted as ' +
    'a duplicate): it, the sender, the devices, Herald and Postgres share the same 2 cores. Herald\'s sender ' +
    'polls the outbox every 200 ms (server/webhooks/sender.ts), which sets the floor of the lag and of the tail ' +
    'after the last receipt.')
  const slowdown = rec.metrics.get('slowdown')!
  const events = rec.metrics.get('events')!
  return rec.result(7, 'webhooks', performance.now() - started, 'slowdown', {
    text: `≤ ${TARGET_SLOWDOWN_PCT} % slower, ≥ ${TARGET_EVENTS_PER_S.toLocaleString('en-US')} events/s`,
    check: () => {
      const s = median(slowdown.values.herald ?? [])
      const e = median(events.values.herald ?? [])
      return Number.isFinite(s) && Number.isFinite(e) ? s <= TARGET_SLOWDOWN_PCT && e >= TARGET_EVENTS_PER_S : undefined
    }
  })
}

interface PhaseCtx {
  ctx: Ctx
  rec: Recorder
  sys: System
  sender: Worker
  devices: Worker
  receiver: WebhookReceiver
  run: number
  D: number
  ids: string[]
}

/**
 * Sends `count` messages (bench ids from `bBase`) in batch requests and waits until the devices got
 * them all and Postgres recorded them delivered, and with an endpoint (`phase` 'on') until each has
 * its message.delivered event. Unless `measured` (the warm-up), nothing is recorded. Returns the count accepted.
 */
async function sendPhase (
  p: PhaseCtx, bBase: number, count: number, phase: Phase, measured: boolean
): Promise<number> {
  const { ctx, rec, sys, sender, devices, receiver, run, D, ids } = p
  await devices.track({ expected: count, samples: false })
  receiver.reset()
  const meter = cpuMeter({
    ...serverCpu(ctx, sys),
    sender: () => sender.cpuMs(),
    devices: () => devices.cpuMs(),
    receiver: () => receiverCpuMs()
  })
  const t0 = now()
  const sent = await sender.send({
    via: 'http',
    url: sys.httpUrl!,
    apiKey: API_KEY,
    plan: { kind: 'user-rr', users: { prefix: `wh${run}-u`, from: 0, to: D }, count, bBase },
    concurrency: ctx.sizes.batchConcurrency,
    batch: ctx.sizes.batchSize,
    pad: ctx.pad,
    collectIds: phase === 'on',
    maxMs: ctx.sizes.sendMaxSeconds * 1000
  })
  if (sent.failed > 0) throw new Error(`${sent.failed} of ${sent.sent} batch sends failed: ${sent.errors.join('; ')}`)
  const M = sent.ok
  if (M < count) {
    await devices.expect(M)
    if (measured) {
      rec.notes.push(`run ${run + 1}, ${phase === 'on' ? 'with' : 'without'} the endpoint: sending stopped after ` +
        `${ctx.sizes.sendMaxSeconds} s with ${M.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} ` +
        'messages accepted; its figures are for those.')
    }
  }
  const done = await devices.waitDone(60_000)
  await recorded(sys, ids, 30_000)
  let complete = true
  if (phase === 'on') complete = await receiver.waitDelivered(M, 30_000)
  const cpu = meter.read()
  const got = await devices.collect()
  if (got.unique !== M) throw new Error(`devices received ${got.unique} of ${M} messages`)
  const w = receiver.read()
  if (phase === 'on') {
    // the measurement fails, with nothing recorded, unless every delivered message got its event
    const missing = sent.ids.filter(id => !w.delivered.has(id)).length
    if (!complete || missing > 0 || sent.ids.length !== M || w.unverified > 0) {
      throw new Error(`${missing} of ${M} delivered messages got no message.delivered event within 30 s of their ` +
        `delivery being recorded (${w.events} unique events in ${w.posts} POSTs, ${w.duplicates} duplicates, ` +
        `${w.unverified} POSTs with a bad signature, ${sent.ids.length} message ids from the sender)`)
    }
  }
  if (!measured) return M
  const start = Math.min(t0, sent.firstAt)
  rec.add(phase === 'on' ? 'rateOn' : 'rateOff', 'herald', M / ((done.at - start) / 1000))
  rec.add(phase === 'on' ? 'cpuServerOn' : 'cpuServerOff', 'herald', cpu.sets.server.cpuMs * 1000 / M)
  if (cpu.sets.postgres) rec.add(phase === 'on' ? 'cpuPgOn' : 'cpuPgOff', 'herald', cpu.sets.postgres.cpuMs * 1000 / M)
  rec.add(phase === 'on' ? 'machine' : 'machineOff', 'herald', cpu.machineBusy * 100)
  rec.add(phase === 'on' ? 'otherOn' : 'otherOff', 'herald', cpu.otherCores * 100)
  if (got.duplicates > 0) {
    rec.notes.push(`run ${run + 1}: ${got.duplicates} duplicate deliveries to the devices, not counted`)
  }
  if (phase === 'off') return M

  const others = Object.entries(w.byType).filter(([t]) => t !== 'message.delivered')
  if (others.length > 0) {
    rec.notes.push(`run ${run + 1}: other events too: ${others.map(([t, n]) => `${n} ${t}`).join(', ')}`)
  }
  if (w.duplicates > 0) {
    rec.notes.push(`run ${run + 1}: ${w.duplicates} duplicate webhook events (same id), not counted`)
  }
  const lags = w.lags.sort((a, b) => a - b)
  rec.add('events', 'herald', w.events / ((w.lastAt - start) / 1000))
  rec.add('tail', 'herald', w.lastAt - done.at)
  rec.add('perPost', 'herald', w.events / w.posts)
  rec.add('lagP50', 'herald', percentile(lags, 50))
  rec.add('lagP99', 'herald', percentile(lags, 99))
  rec.add('cpuReceiver', 'herald', cpu.sets.receiver.core * 100)
  rec.add('cpuSender', 'herald', cpu.sets.sender.core * 100)
  rec.add('cpuDevices', 'herald', cpu.sets.devices.core * 100)
  return M
}

/**
 * Waits until the devices have no delivery still queued or sent, i.e. Postgres recorded every PUBACK. The
 * partial index deliveries_pending answers it in well under a millisecond, so polling costs Postgres next to
 * nothing (a count of the delivered rows scans them all: ~30 ms a poll at 60,000 rows).
 */
async function recorded (sys: System, ids: string[], timeoutMs: number): Promise<void> {
  const t0 = performance.now()
  let pending = NaN
  while (performance.now() - t0 < timeoutMs) {
    const { rows } = await sys.db!.pool.query<{ n: number }>(
      "select count(*)::int as n from deliveries where device_id = any($1) and status in ('queued', 'sent')", [ids])
    pending = rows[0].n
    if (pending === 0) return
    await sleep(20)
  }
  throw new Error(`${pending} deliveries not recorded as delivered within ${timeoutMs} ms of the last receipt`)
}

/** This process' CPU ms: the webhook receiver and the bench's own bookkeeping. */
function receiverCpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const adminAuth = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`

/** POST /v1/webhooks for every event type, pointing at the receiver; gives the receiver the secret. */
async function registerEndpoint (sys: System, receiver: WebhookReceiver): Promise<string> {
  const res = await fetch(`${sys.httpUrl}/v1/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: adminAuth },
    body: JSON.stringify({ url: receiver.url, events: WEBHOOK_EVENT_TYPES, description: 'bench receiver' })
  })
  const text = await res.text()
  if (res.status !== 201) throw new Error(`POST /v1/webhooks answered ${res.status}: ${text.slice(0, 300)}`)
  const endpoint = JSON.parse(text) as { id: string, secret: string }
  receiver.secret = endpoint.secret
  return endpoint.id
}

async function deleteEndpoint (sys: System, id: string): Promise<void> {
  const res = await fetch(`${sys.httpUrl}/v1/webhooks/${id}`, {
    method: 'DELETE', headers: { authorization: adminAuth }
  })
  await res.arrayBuffer()
  if (res.status !== 204) throw new Error(`DELETE /v1/webhooks/${id} answered ${res.status}`)
}
