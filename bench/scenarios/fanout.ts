// 3. Fan-out. Every device is its own connection (persistent, subscribed to its inbox and to
// topics/fan), spread over load-generator processes of ≤ 5,000 sockets.
//  a) one message to U users: Herald one `to.users` request; baselines U per-user PUBLISHes.
//  b) one message to a topic all T devices subscribe to.
// Time from the first send stamp to the last receipt, counted per device by id. For Herald
// also until every delivery is recorded `delivered` (its PUBACK): for (a) by polling
// GET /v1/messages/{id}; for (b) by counting in SQL (the API would return 10,000 rows a poll).
// One server instance and one set of connections per system; the runs repeat (a) and (b) on it.
import { pollCount, serverCpu, type Ctx } from '../lib/context.js'
import { DeviceFleet, merge, Worker } from '../lib/loadgen.js'
import { cpuMeter, now, sleep } from '../lib/proc.js'
import { median, Recorder, type ScenarioResult } from '../lib/report.js'
import { API_KEY, JWT_SECRET, startSystem, type System, type SystemKind, MOSQUITTO_WS_NOTE } from '../lib/systems.js'

export async function fanout (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const U = ctx.sizes.fanoutUsers
  const T = Math.max(U, ctx.sizes.fanoutTopicDevices)
  const n = (v: number): string => v.toLocaleString('en-US')
  const rec = new Recorder()
  rec.metric('users', `to ${n(U)} users: first send → last receipt`, 'ms', 'lower')
  rec.metric('usersAccepted', `to ${n(U)} users: request → 202`, 'ms', 'info')
  rec.metric('usersRecorded', `to ${n(U)} users: → last PUBACK recorded`, 'ms', 'lower')
  rec.metric('topic', `topic to ${n(T)} devices: send → last receipt`, 'ms', 'lower')
  rec.metric('topicAccepted', `topic to ${n(T)} devices: request → 202`, 'ms', 'info')
  rec.metric('topicRecorded', `topic to ${n(T)} devices: → last PUBACK recorded`, 'ms', 'lower')
  rec.metric('topicCpu', `topic to ${n(T)}: server CPU`, 'ms', 'lower')
  rec.metric('topicCpuPg', `topic to ${n(T)}: Postgres CPU`, 'ms', 'lower')
  rec.metric('connect', `connecting the ${n(T)} devices`, 'devices/s', 'higher', 0)
  for (const k of ['aedes', 'mosquitto'] as const) {
    for (const key of ['usersAccepted', 'usersRecorded', 'topicAccepted', 'topicRecorded']) {
      rec.na(key, k, 'in memory, no REST')
    }
    rec.na('topicCpuPg', k, 'no database')
  }

  const fleet = await DeviceFleet.start('s3-devices', T)
  const sender = await Worker.start('s3-sender')
  try {
    for (const kind of ctx.systems) {
      ctx.log(`3 fan-out: ${kind}: starting, connecting ${n(T)} devices`)
      let sys: System | undefined
      try {
        sys = await startSystem(ctx.env, kind, `s3-${kind}`, ctx.profile ? `s3-${kind}` : undefined)
        const spec = {
          idPrefix: 'fan-d', userPrefix: 'fan-u', topics: ['users/{user}/inbox', 'topics/fan'], secret: JWT_SECRET
        }
        const conn = await fleet.connect(sys.wsUrl, spec, 0, T)
        if (conn.connected !== T) {
          throw new Error(`${conn.failed} of ${T} devices did not connect: ${conn.errors.join('; ')}`)
        }
        rec.add('connect', kind, T / (conn.ms / 1000))
        await sleep(1_000)
        for (let run = 0; run < ctx.runs; run++) {
          ctx.log(`3 fan-out: ${kind}, run ${run + 1}/${ctx.runs}`)
          try {
            await users(ctx, rec, kind, sys, fleet, sender, U, run)
            await sleep(500)
            await topic(ctx, rec, kind, sys, fleet, sender, T, run)
            await sleep(500)
          } catch (err) {
            rec.errors.push(`${kind} run ${run + 1}: ${(err as Error).message}`)
            ctx.log(`  ERROR ${(err as Error).message}`)
          }
        }
        if (fleet.lost() > 0) {
          rec.notes.push(`${kind}: ${fleet.lost()} device connections were closed by the server during the runs`)
        }
      } catch (err) {
        rec.errors.push(`${kind}: ${(err as Error).message}`)
        ctx.log(`  ERROR ${(err as Error).message}`)
      } finally {
        await sys?.stop()
        await fleet.disconnect()
      }
    }
  } finally {
    await Promise.all([fleet.stop(), sender.stop()])
  }
  rec.notes.push(`${n(T)} devices, at most 5,000 per load-generator process, each process on its own loopback ` +
    'source address. Runs share one server instance and one set of connections per system. ' +
    `Baselines send the users case as ${n(U)} QoS 1 PUBLISHes, all at once, from one publisher.`)
  if (ctx.systems.includes('mosquitto')) rec.notes.push(MOSQUITTO_WS_NOTE)
  const users_ = rec.metrics.get('users')!
  return rec.result(3, 'fan-out', performance.now() - started, 'users', {
    text: `to ${n(U)} users ≤ 1.2× Mosquitto's per-user publishes`,
    check: () => users_.values.herald?.length && users_.values.mosquitto?.length
      ? median(users_.values.herald) <= 1.2 * median(users_.values.mosquitto)
      : undefined
  })
}

async function users (
  ctx: Ctx, rec: Recorder, kind: SystemKind, sys: System, fleet: DeviceFleet, sender: Worker, U: number, run: number
): Promise<void> {
  const b = 1_000 + run
  await fleet.track(k => fleet.share(k, 0, U))
  const [sent, lastAt] = await Promise.all([
    sender.send({
      via: kind === 'herald' ? 'http' : 'mqtt',
      url: kind === 'herald' ? sys.httpUrl! : sys.wsUrl,
      apiKey: API_KEY,
      plan: kind === 'herald'
        ? { kind: 'users-one', users: { prefix: 'fan-u', from: 0, to: U }, b }
        : { kind: 'users-each', users: { prefix: 'fan-u', from: 0, to: U }, b },
      concurrency: U,
      pad: ctx.pad,
      collectIds: true
    }).then(r => {
      if (r.failed > 0) throw new Error(`${r.failed} of ${r.sent} sends failed: ${r.errors.join('; ')}`)
      return r
    }),
    fleet.waitDone(60_000)
  ])
  const got = merge(await fleet.collect())
  if (got.unique !== U) throw new Error(`users fan-out: ${got.unique} of ${U} devices received it`)
  rec.add('users', kind, lastAt - sent.firstAt)
  if (kind === 'herald') {
    rec.add('usersAccepted', kind, sent.lastAt - sent.firstAt)
    const id = sent.ids[0]
    const recordedAt = await pollApi(sys.httpUrl!, id, U, 60_000)
    rec.add('usersRecorded', kind, recordedAt - sent.firstAt)
  }
}

async function topic (
  ctx: Ctx, rec: Recorder, kind: SystemKind, sys: System, fleet: DeviceFleet, sender: Worker, T: number, run: number
): Promise<void> {
  const b = 2_000 + run
  await fleet.track(k => fleet.share(k, 0, T))
  const meter = cpuMeter(serverCpu(ctx, sys))
  // the server's work for this message: up to the last receipt (baselines) or the last PUBACK recorded (Herald)
  const readCpu = (): void => {
    const cpu = meter.read()
    rec.add('topicCpu', kind, cpu.sets.server.cpuMs)
    if (cpu.sets.postgres) rec.add('topicCpuPg', kind, cpu.sets.postgres.cpuMs)
  }
  const [sent, lastAt] = await Promise.all([
    sender.send({
      via: kind === 'herald' ? 'http' : 'mqtt',
      url: kind === 'herald' ? sys.httpUrl! : sys.wsUrl,
      apiKey: API_KEY,
      plan: { kind: 'topic', topic: 'fan', count: 1, bBase: b },
      concurrency: 1,
      pad: ctx.pad,
      collectIds: true
    }).then(r => {
      if (r.failed > 0) throw new Error(`${r.failed} of ${r.sent} sends failed: ${r.errors.join('; ')}`)
      return r
    }),
    fleet.waitDone(120_000)
  ])
  const got = merge(await fleet.collect())
  if (got.unique !== T) throw new Error(`topic fan-out: ${got.unique} of ${T} devices received it`)
  rec.add('topic', kind, lastAt - sent.firstAt)
  if (kind === 'herald') {
    rec.add('topicAccepted', kind, sent.lastAt - sent.firstAt)
    const id = sent.ids[0]
    const recordedAt = await pollCount(sys.db!.pool,
      "select count(*)::int as n from deliveries where message_id = $1 and status = 'delivered'", [id], T, 120_000)
    rec.add('topicRecorded', kind, recordedAt - sent.firstAt)
    readCpu()
    // the API agrees
    const res = await fetch(`${sys.httpUrl}/v1/messages/${id}`, { headers: { authorization: `Bearer ${API_KEY}` } })
    const body = await res.json() as { deliveries: Array<{ status: string }> }
    const delivered = body.deliveries.filter(d => d.status === 'delivered').length
    if (delivered !== T) throw new Error(`GET /v1/messages/${id}: ${delivered} of ${T} deliveries delivered`)
  } else readCpu()
}

/** Polls GET /v1/messages/{id} every 20 ms until `count` deliveries are `delivered`; the epoch time it saw that. */
async function pollApi (httpUrl: string, id: string, count: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now()
  let last = 0
  while (performance.now() - t0 < timeoutMs) {
    const res = await fetch(`${httpUrl}/v1/messages/${id}`, { headers: { authorization: `Bearer ${API_KEY}` } })
    const body = await res.json() as { deliveries?: Array<{ status: string }> }
    last = body.deliveries?.filter(d => d.status === 'delivered').length ?? 0
    if (last >= count) return now()
    await sleep(20)
  }
  throw new Error(`GET /v1/messages/${id}: ${last} of ${count} delivered after ${timeoutMs} ms`)
}
