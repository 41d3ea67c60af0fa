// 4. Offline backlog. A persistent device connects, subscribes (QoS 1) and disconnects; N
// messages are queued for it (every send acknowledged: Herald's 202, the broker's PUBACK);
// it reconnects, and the time from its connect() to the N-th receipt is the drain time.
// Server RSS before and after queueing gives the memory per queued message.
import { eachRun, pollCount, withSystem, type Ctx } from '../lib/context.js'
import { Worker } from '../lib/loadgen.js'
import { now, rssBytes, sleep } from '../lib/proc.js'
import { median, Recorder, type ScenarioResult } from '../lib/report.js'
import { API_KEY, JWT_SECRET, MOSQUITTO_WS_NOTE } from '../lib/systems.js'
import { DEFAULT_MAX_INFLIGHT_PER_DEVICE } from '../../server/config.js'

/** Backlogs this large run once per system, not once per run. */
const LARGE = 50_000

export async function backlog (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const sizes = ctx.sizes.backlog
  const rec = new Recorder()
  const n = (v: number): string => v.toLocaleString('en-US')
  for (const N of sizes) {
    rec.metric(`drain${N}`, `${n(N)} queued: reconnect → drained`, 'ms', 'lower', 0)
    rec.metric(`rate${N}`, `${n(N)} queued: drain rate`, 'msg/s', 'higher', 0)
    rec.metric(`recorded${N}`, `${n(N)} queued: reconnect → all PUBACKs recorded`, 'ms', 'lower', 0)
    rec.metric(`rss${N}`, `${n(N)} queued: server RSS per queued message`, 'bytes', 'lower', 0)
    rec.metric(`disk${N}`, `${n(N)} queued: database growth per queued message`, 'bytes', 'info', 0)
    rec.metric(`enqueue${N}`, `${n(N)} queued: enqueue rate (sends acknowledged)`, 'msg/s', 'higher', 0)
    for (const k of ['aedes', 'mosquitto'] as const) {
      rec.na(`recorded${N}`, k, 'in memory')
      rec.na(`disk${N}`, k, 'in memory')
    }
  }

  const sender = await Worker.start('s4-sender')
  const device = await Worker.start('s4-device')
  try {
    await eachRun(ctx, rec, '4 backlog', async (kind, run) => {
      await withSystem(ctx, kind, `s4-${kind}-r${run}`, async sys => {
        for (const N of sizes) {
          // the large backlog once per system: it takes minutes through Herald's REST today
          if (N >= LARGE && run > 0) continue
          const idPrefix = `bl${N}r${run}-d`
          const userPrefix = `bl${N}r${run}-u`
          const spec = { idPrefix, userPrefix, from: 0, to: 1, topics: ['users/{user}/inbox'], secret: JWT_SECRET }
          const first = await device.connect({ url: sys.wsUrl, spec, clean: false, concurrency: 1, keepalive: 60 })
          if (first.connected !== 1) throw new Error(`device did not connect: ${first.errors.join('; ')}`)
          await device.disconnect()
          await sleep(300)
          const rss0 = rssBytes(sys.pid)
          const disk0 = sys.db ? await dbSize(sys.db.pool) : NaN
          const sent = await sender.send({
            via: kind === 'herald' ? 'http' : 'mqtt',
            url: kind === 'herald' ? sys.httpUrl! : sys.wsUrl,
            apiKey: API_KEY,
            plan: { kind: 'user-rr', users: { prefix: userPrefix, from: 0, to: 1 }, count: N, bBase: 0 },
            concurrency: kind === 'herald' ? ctx.sizes.httpConcurrency : ctx.sizes.mqttWindow,
            pad: ctx.pad
          })
          if (sent.failed > 0) throw new Error(`${sent.failed} of ${sent.sent} sends failed: ${sent.errors.join('; ')}`)
          rec.add(`enqueue${N}`, kind, N / ((sent.lastAt - sent.firstAt) / 1000))
          await sleep(1_000)
          const rss1 = rssBytes(sys.pid)
          rec.add(`rss${N}`, kind, (rss1 - rss0) / N)
          if (sys.db) rec.add(`disk${N}`, kind, (await dbSize(sys.db.pool) - disk0) / N)

          await device.track({ expected: N, samples: false })
          const t0 = now()
          const again = await device.connect({ url: sys.wsUrl, spec, clean: false, concurrency: 1, keepalive: 60 })
          if (again.connected !== 1) throw new Error(`device did not reconnect: ${again.errors.join('; ')}`)
          const done = await device.waitDone(60_000 + N * 2)
          rec.add(`drain${N}`, kind, done.at - t0)
          rec.add(`rate${N}`, kind, N / ((done.at - t0) / 1000))
          if (kind === 'herald') {
            const recordedAt = await pollCount(sys.db!.pool,
              "select count(*)::int as n from deliveries where device_id = $1 and status = 'delivered'",
              [`${idPrefix}0`], N, 60_000)
            rec.add(`recorded${N}`, kind, recordedAt - t0)
          }
          const got = await device.collect()
          if (got.unique !== N) throw new Error(`device received ${got.unique} of ${N}`)
          await device.disconnect()
          await sleep(300)
        }
      })
    })
  } finally {
    await Promise.all([sender.stop(), device.stop()])
  }
  rec.notes.push('Queued with the device offline: Herald through REST (keep-alive, bounded in flight), the baselines ' +
    'by a QoS 1 publisher; only then does the device reconnect. Herald reads the queue from Postgres (1,000 rows ' +
    'a page, the next one read while 500 are left); aedes and Mosquitto hold it in memory (Mosquitto: ' +
    'max_queued_messages 1,000,000, max_queued_bytes unlimited). Herald and Mosquitto both keep ' +
    `${DEFAULT_MAX_INFLIGHT_PER_DEVICE} messages in flight per device (Herald's default); ` +
    'bare aedes has no such limit.')
  rec.notes.push('RSS per queued message = (server RSS after queueing − before) ÷ N, one second after the last ' +
    'acknowledged send, without a forced GC: for Herald, whose queue is in Postgres, it is noise around zero; ' +
    '"database growth" is the change in pg_database_size.')
  if (ctx.systems.includes('mosquitto')) rec.notes.push(MOSQUITTO_WS_NOTE)
  if (ctx.runs > 1 && sizes.some(N => N >= LARGE)) {
    rec.notes.push(`Backlogs of ${LARGE.toLocaleString('en-US')} or more: one run per system (the first), ` +
      'to keep the bench within its time.')
  }
  const first = sizes[0]
  const drain = rec.metrics.get(`drain${first}`)!
  return rec.result(4, 'offline backlog', performance.now() - started, `drain${first}`, {
    text: `${n(first)} drained ≤ Mosquitto's time`,
    check: () => drain.values.herald?.length && drain.values.mosquitto?.length
      ? median(drain.values.herald) <= median(drain.values.mosquitto)
      : undefined
  })
}

async function dbSize (pool: import('pg').Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('select pg_database_size(current_database()) as n')
  return Number(rows[0].n)
}
