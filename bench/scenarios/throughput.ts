// 1. Throughput 1→1: N messages of ~200 bytes to one online persistent device (or, with
// --set=throughputDevices:D, round robin to D devices).
// Herald: single `POST /v1/messages` requests, keep-alive, a bounded number in flight; then,
// on the same server and device, the same count in `POST /v1/messages/batch` requests.
// Baselines: QoS 1 PUBLISHes to users/{u}/inbox, a bounded number unacknowledged.
// Throughput = receipts counted by id at the device ÷ (first send → last receipt).
// With --nodes N, Herald runs as N processes on one database: devices round robin over them,
// requests spread over all of them (bench/lib/cluster.ts), and each phase reports what each
// process and the accept lock did.
import { clusterProbe, deviceUrls, recordCluster, spreadOver, waitDelivered } from '../lib/cluster.js'
import { eachRun, pollCount, serverCpu, withSystem, type Ctx } from '../lib/context.js'
import { Worker } from '../lib/loadgen.js'
import { cpuMeter, now, sleep } from '../lib/proc.js'
import { median, Recorder, ratio, type ScenarioResult } from '../lib/report.js'
import { API_KEY, JWT_SECRET, type System } from '../lib/systems.js'

export async function throughput (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const N = ctx.sizes.throughputMessages
  const D = Math.max(1, ctx.sizes.throughputDevices)
  const rec = new Recorder()
  const processes = ctx.nodes > 1 ? `, Herald as ${ctx.nodes} processes` : ''
  rec.metric('rate', `delivered msg/s, ${N.toLocaleString('en-US')} msgs, single requests${processes}`, 'msg/s',
    'higher')
  rec.metric('rateRecorded', 'to PUBACK recorded in Postgres', 'msg/s', 'higher')
  rec.metric('cpuServer', 'server CPU per message', 'µs', 'lower')
  rec.metric('cpuPg', 'Postgres CPU per message', 'µs', 'lower')
  rec.metric('batch', `delivered msg/s, batch requests of ${ctx.sizes.batchSize}`, 'msg/s', 'higher')
  rec.metric('cpuServerBatch', 'server CPU per message, batch requests', 'µs', 'lower')
  rec.metric('cpuPgBatch', 'Postgres CPU per message, batch requests', 'µs', 'lower')
  rec.metric('commits', 'Postgres commits per message', 'commits', 'lower', 2)
  rec.metric('wal', 'Postgres WAL per message', 'bytes', 'lower', 0)
  rec.metric('cpuSender', 'load generator: sender CPU', '% of a core', 'info', 0)
  rec.metric('cpuReceiver', 'load generator: device CPU', '% of a core', 'info', 0)
  rec.metric('machine', 'machine busy, all cores', '%', 'info', 0)
  rec.metric('other', 'other processes on the machine', '% of a core', 'info', 0)
  for (const k of ['aedes', 'mosquitto'] as const) {
    rec.na('rateRecorded', k, 'in memory')
    rec.na('cpuPg', k, 'no database')
    rec.na('commits', k, 'no database')
    rec.na('wal', k, 'no database')
  }
  for (const k of ['aedes', 'mosquitto'] as const) {
    rec.na('batch', k, 'MQTT has no batch')
    rec.na('cpuServerBatch', k, 'MQTT has no batch')
    rec.na('cpuPgBatch', k, 'no database')
  }

  const sender = await Worker.start('s1-sender')
  const receiver = await Worker.start('s1-device')
  try {
    await eachRun(ctx, rec, '1 throughput', async (kind, run) => {
      await withSystem(ctx, kind, `s1-${kind}-r${run}`, async sys => {
        const conn = await receiver.connect({
          url: sys.wsUrl,
          urls: deviceUrls(sys),
          spec: {
            idPrefix: `tp${run}-d`,
            userPrefix: `tp${run}-u`,
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
        await receiver.track({ expected: N, samples: false })
        const db0 = sys.db ? await dbCounters(sys.db.pool) : undefined
        const probe = kind === 'herald' && ctx.clusterProbe ? await clusterProbe(sys, sys.db!.pool) : undefined
        const meter = cpuMeter({
          ...serverCpu(ctx, sys), sender: () => sender.cpuMs(), receiver: () => receiver.cpuMs()
        })
        const t0 = now()
        const sent = await sender.send({
          via: kind === 'herald' ? 'http' : 'mqtt',
          url: kind === 'herald' ? sys.httpUrl! : sys.wsUrl,
          apiKey: API_KEY,
          spread: spreadOver(sys, D),
          plan: { kind: 'user-rr', users: { prefix: `tp${run}-u`, from: 0, to: D }, count: N, bBase: 0 },
          concurrency: kind === 'herald' ? ctx.sizes.httpConcurrency : ctx.sizes.mqttWindow,
          pad: ctx.pad,
          maxMs: ctx.sizes.sendMaxSeconds * 1000
        })
        if (sent.failed > 0) throw new Error(`${sent.failed} of ${sent.sent} sends failed: ${sent.errors.join('; ')}`)
        // a server too slow for N within the time bound: count what it accepted
        const M = sent.ok
        if (M < N) {
          await receiver.expect(M)
          rec.notes.push(`${kind} run ${run + 1}: sending stopped after ${ctx.sizes.sendMaxSeconds} s with ` +
            `${M.toLocaleString('en-US')} of ${N.toLocaleString('en-US')} messages accepted; ` +
            'its figures are for those.')
        }
        const ids = Array.from({ length: D }, (_, i) => `tp${run}-d${i}`)
        const done = await waitDelivered(receiver, sys, ids, 60_000)
        // first send → last receipt, as the rate: the PUBACK polling below is not part of it
        const reading = await probe?.read()
        let recordedAt = NaN
        if (kind === 'herald') {
          recordedAt = await pollCount(sys.db!.pool,
            "select count(*)::int as n from deliveries where device_id = any($1) and status = 'delivered'",
            [ids], M, 30_000)
        }
        const cpu = meter.read()
        if (reading) recordCluster(rec, '', 'single requests', reading, M, run)
        if (sys.db && db0) {
          // statistics reach pg_stat_database within a second of each transaction
          await sleep(1_100)
          const db1 = await dbCounters(sys.db.pool)
          rec.add('commits', kind, (db1.commits - db0.commits) / M)
          rec.add('wal', kind, (db1.wal - db0.wal) / M)
        }
        const got = await receiver.collect()
        if (got.unique !== M) throw new Error(`device received ${got.unique} of ${M}`)
        const start = Math.min(t0, sent.firstAt)
        rec.add('rate', kind, M / ((done.at - start) / 1000))
        if (kind === 'herald') rec.add('rateRecorded', kind, M / ((recordedAt - start) / 1000))
        rec.add('cpuServer', kind, cpu.sets.server.cpuMs * 1000 / M)
        if (cpu.sets.postgres) rec.add('cpuPg', kind, cpu.sets.postgres.cpuMs * 1000 / M)
        rec.add('cpuSender', kind, cpu.sets.sender.core * 100)
        rec.add('cpuReceiver', kind, cpu.sets.receiver.core * 100)
        rec.add('machine', kind, cpu.machineBusy * 100)
        rec.add('other', kind, cpu.otherCores * 100)
        if (got.duplicates > 0) {
          rec.notes.push(`${kind} run ${run + 1}: ${got.duplicates} duplicate deliveries (at-least-once), not counted`)
        }
        if (kind === 'herald') await batchPhase(ctx, rec, sys, sender, receiver, run, D)
        await receiver.disconnect()
      })
    })
  } finally {
    await Promise.all([sender.stop(), receiver.stop()])
  }
  if (ctx.env.postmasterPid === undefined) {
    rec.na('cpuPg', 'herald', 'Postgres not on this machine')
    rec.na('cpuPgBatch', 'herald', 'Postgres not on this machine')
  }
  loadgenCheck(rec, ['cpuSender', 'cpuReceiver'])
  if (ctx.nodes > 1) {
    rec.notes.push(`Herald ran as ${ctx.nodes} processes on one database; ` +
      `${D === 1 ? 'the device on the first' : `the ${D} devices round robin over them`}, and the sender's ` +
      `requests spread over all of them (a round of ${D} message${D === 1 ? '' : 's'} through one process, the next ` +
      'through the next; batch requests round robin), so most messages are accepted by a process other than the ' +
      'one holding their device\'s connection and reach it by NOTIFY. Server CPU is all Herald processes together.')
  }
  rec.notes.push(`Herald: ${ctx.sizes.httpConcurrency} requests in flight over keep-alive sockets (node http.Agent); ` +
    `batch: ${ctx.sizes.batchConcurrency} requests of ${ctx.sizes.batchSize} messages in flight, the same count to ` +
    `the same device right after; baselines: ${ctx.sizes.mqttWindow} unacknowledged QoS 1 PUBLISHes from one ` +
    'mqtt.js publisher. Sender and device are separate load-generator processes on the same 2 cores as the ' +
    'server: the "load generator" and "machine busy" rows say how close they came to being the limit.')
  const h = rec.metrics.get('rate')!
  const r = ratio(h, 'mosquitto')
  const title = `throughput 1→${D === 1 ? '1' : D}${ctx.nodes > 1 ? `, ${ctx.nodes} Herald processes` : ''}`
  return rec.result(1, title, performance.now() - started, 'rate', {
    text: '≥ 1.0× Mosquitto',
    check: () => Number.isFinite(r) ? r >= 1.0 : undefined
  })
}

/** The same count again to the same device, `batchSize` messages per request. */
async function batchPhase (
  ctx: Ctx, rec: Recorder, sys: System, sender: Worker, receiver: Worker, run: number, D: number
): Promise<void> {
  const N = ctx.sizes.throughputMessages
  await receiver.track({ expected: N, samples: false })
  const probe = ctx.clusterProbe ? await clusterProbe(sys, sys.db!.pool) : undefined
  const meter = cpuMeter(serverCpu(ctx, sys))
  const t0 = now()
  const sent = await sender.send({
    via: 'http',
    url: sys.httpUrl!,
    apiKey: API_KEY,
    spread: spreadOver(sys, D),
    plan: { kind: 'user-rr', users: { prefix: `tp${run}-u`, from: 0, to: D }, count: N, bBase: N },
    concurrency: ctx.sizes.batchConcurrency,
    batch: ctx.sizes.batchSize,
    pad: ctx.pad,
    maxMs: ctx.sizes.sendMaxSeconds * 1000
  })
  if (sent.failed > 0) throw new Error(`${sent.failed} of ${sent.sent} batch sends failed: ${sent.errors.join('; ')}`)
  const M = sent.ok
  if (M < N) await receiver.expect(M)
  const done = await waitDelivered(receiver, sys, Array.from({ length: D }, (_, i) => `tp${run}-d${i}`), 60_000)
  const cpu = meter.read()
  if (probe) recordCluster(rec, 'batch', 'batch requests', await probe.read(), M, run)
  const got = await receiver.collect()
  if (got.unique !== M) throw new Error(`device received ${got.unique} of ${M} batch-sent messages`)
  rec.add('batch', 'herald', M / ((done.at - Math.min(t0, sent.firstAt)) / 1000))
  rec.add('cpuServerBatch', 'herald', cpu.sets.server.cpuMs * 1000 / M)
  if (cpu.sets.postgres) rec.add('cpuPgBatch', 'herald', cpu.sets.postgres.cpuMs * 1000 / M)
}

/** Commits in this database and WAL written by the whole server so far. */
async function dbCounters (pool: import('pg').Pool): Promise<{ commits: number, wal: number }> {
  const { rows } = await pool.query<{ commits: string, wal: string }>(
    `select xact_commit as commits, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') as wal
     from pg_stat_database where datname = current_database()`)
  return { commits: Number(rows[0].commits), wal: Number(rows[0].wal) }
}

/**
 * Says so when a system's figure may be the load generator's limit rather than the server's:
 * one of its processes near a full core, or the whole machine near busy.
 */
export function loadgenCheck (rec: Recorder, keys: string[]): void {
  for (const kind of ['herald', 'aedes', 'mosquitto'] as const) {
    const busiest = Math.max(...keys.map(k => median(rec.metrics.get(k)?.values[kind] ?? [])).filter(Number.isFinite))
    const machine = median(rec.metrics.get('machine')?.values[kind] ?? [])
    if (busiest >= 75) {
      rec.notes.push(`${kind}: a load-generator process used ${Math.round(busiest)}% of a core: its figure is a ` +
        'lower bound, set as much by the load generator as by the server.')
    } else if (machine >= 95) {
      rec.notes.push(`${kind}: the machine was ${Math.round(machine)}% busy: server, Postgres and load generator ` +
        'together used both cores, so its figure is a lower bound.')
    }
  }
}
