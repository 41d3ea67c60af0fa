// 2. Latency: a paced 2,000 msg/s for 10 s, round robin over online persistent devices.
// Each message carries its send stamp (taken just before the HTTP request / PUBLISH is
// written); the device takes receipt − stamp. Herald also from the payload's sentAt (the
// server's accept time, ms precision). A warm-up at the same rate comes first, unmeasured.
// With --nodes N, Herald runs as N processes on one database: devices round robin over them,
// each round of messages through the next process, and the figures are split by whether a
// message was accepted by its device's own process or another (which signals it by NOTIFY).
import { clusterProbe, deviceUrls, recordCluster, spreadOver, waitDelivered } from '../lib/cluster.js'
import { eachRun, serverCpu, withSystem, type Ctx } from '../lib/context.js'
import { merge, Worker, type Merged } from '../lib/loadgen.js'
import { cpuMeter } from '../lib/proc.js'
import { median, percentile, Recorder, type ScenarioResult } from '../lib/report.js'
import { API_KEY, JWT_SECRET, type System } from '../lib/systems.js'

export async function latency (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const {
    latencyRate: rate,
    latencySeconds: seconds,
    latencyDevices: D,
    latencyWarmupSeconds: warm,
    latencyLightRate: light,
    latencyLightSeconds: lightSeconds
  } = ctx.sizes
  const fullRate = rate
  const N = Math.round(rate * seconds)
  const rec = new Recorder()
  rec.metric('p50', `send → receipt p50, ${rate.toLocaleString('en-US')} msg/s for ${seconds} s`, 'ms', 'lower')
  rec.metric('p90', 'send → receipt p90', 'ms', 'lower')
  rec.metric('p99', 'send → receipt p99', 'ms', 'lower')
  rec.metric('max', 'send → receipt max', 'ms', 'lower')
  rec.metric('lightP50', `light load, ${light} msg/s for ${lightSeconds} s: p50`, 'ms', 'lower')
  rec.metric('lightP99', 'light load: p99', 'ms', 'lower')
  rec.metric('lightMax', 'light load: max', 'ms', 'lower')
  rec.metric('sentAtP50', 'Herald sentAt (accept) → receipt p50', 'ms', 'lower', 0)
  rec.metric('sentAtP99', 'Herald sentAt (accept) → receipt p99', 'ms', 'lower', 0)
  const cluster = ctx.nodes > 1
  if (cluster) {
    rec.metric('crossDelta', 'accept → receipt p99: other process − same process', 'ms', 'lower', 0)
    for (const [key, label] of [
      ['sameP50', 'same process: accept → receipt p50'],
      ['sameP99', 'same process: accept → receipt p99'],
      ['otherP50', 'other process: accept → receipt p50'],
      ['otherP99', 'other process: accept → receipt p99'],
      ['sameSendP99', 'same process: send → receipt p99'],
      ['otherSendP99', 'other process: send → receipt p99'],
      ['lightSameP50', `light load, ${light} msg/s: same process, accept → receipt p50`],
      ['lightSameP99', 'light load: same process, accept → receipt p99'],
      ['lightOtherP50', 'light load: other process, accept → receipt p50'],
      ['lightOtherP99', 'light load: other process, accept → receipt p99']
    ] as const) {
      rec.metric(key, label, 'ms', 'lower', key.includes('Send') ? undefined : 0)
    }
    for (const k of ['aedes', 'mosquitto'] as const) {
      for (const key of ['crossDelta', 'sameP50', 'sameP99', 'otherP50', 'otherP99', 'sameSendP99', 'otherSendP99',
        'lightSameP50', 'lightSameP99', 'lightOtherP50', 'lightOtherP99']) rec.na(key, k, 'one process')
    }
  }
  rec.metric('achieved', 'achieved send rate', 'msg/s', 'info', 0)
  rec.metric('slip', 'load generator: send schedule slip p99', 'ms', 'info')
  rec.metric('eld', 'load generator: device process event-loop delay p99', 'ms', 'info')
  rec.metric('cpuServer', 'server CPU', '% of a core', 'lower', 0)
  rec.metric('cpuPg', 'Postgres CPU', '% of a core', 'lower', 0)
  rec.metric('cpuLoadgen', 'load generator CPU (sender + devices)', '% of a core', 'info', 0)
  rec.metric('other', 'other processes on the machine', '% of a core', 'info', 0)
  for (const k of ['aedes', 'mosquitto'] as const) {
    rec.na('sentAtP50', k, 'Herald only')
    rec.na('sentAtP99', k, 'Herald only')
    rec.na('cpuPg', k, 'no database')
  }

  const sender = await Worker.start('s2-sender')
  const devices = await Worker.start('s2-devices')
  try {
    await eachRun(ctx, rec, '2 latency', async (kind, run) => {
      await withSystem(ctx, kind, `s2-${kind}-r${run}`, async sys => {
        const conn = await devices.connect({
          url: sys.wsUrl,
          urls: deviceUrls(sys),
          spec: {
            idPrefix: `lat${run}-d`,
            userPrefix: `lat${run}-u`,
            from: 0,
            to: D,
            topics: ['users/{user}/inbox'],
            secret: JWT_SECRET
          },
          clean: false,
          concurrency: 20,
          keepalive: 60
        })
        if (conn.connected !== D) {
          throw new Error(`${conn.failed} of ${D} devices did not connect: ${conn.errors.join('; ')}`)
        }
        // paced sends; a server slower than the rate is given 1.5× the planned time, then
        // sending stops and the figures are for what it accepted
        const paced = async (count: number, bBase: number, rate = fullRate): Promise<number> => {
          await devices.track({ expected: count, samples: true })
          const sent = await sender.send({
            via: kind === 'herald' ? 'http' : 'mqtt',
            url: kind === 'herald' ? sys.httpUrl! : sys.wsUrl,
            apiKey: API_KEY,
            spread: spreadOver(sys, D),
            plan: { kind: 'user-rr', users: { prefix: `lat${run}-u`, from: 0, to: D }, count, bBase },
            concurrency: 256,
            rate,
            pad: ctx.pad,
            maxMs: Math.max(2_000, count / rate * 1500)
          })
          if (sent.failed > 0) throw new Error(`${sent.failed} of ${sent.sent} sends failed: ${sent.errors.join('; ')}`)
          if (sent.ok < count) await devices.expect(sent.ok)
          await waitDelivered(devices, sys, Array.from({ length: D }, (_, i) => `lat${run}-d${i}`), 60_000)
          lastSend = sent
          return sent.ok
        }
        let lastSend: Awaited<ReturnType<Worker['send']>> | undefined
        // warm-up: same rate, not measured
        await paced(Math.round(rate * warm), 0)
        const probe = kind === 'herald' && ctx.clusterProbe ? await clusterProbe(sys, sys.db!.pool) : undefined
        const meter = cpuMeter({ ...serverCpu(ctx, sys), loadgen: () => sender.cpuMs() + devices.cpuMs() })
        const M = await paced(N, 1_000_000)
        const cpu = meter.read()
        const reading = await probe?.read()
        const got = merge([await devices.collect()])
        if (got.unique !== M) throw new Error(`devices received ${got.unique} of ${M}`)
        record(rec, kind, sys, got.latencies, got.sentAtLatencies)
        if (cluster && kind === 'herald') recordByProcess(rec, '', got, run)
        if (reading) recordCluster(rec, '', `${rate.toLocaleString('en-US')} msg/s`, reading, M, run)
        const achieved = M / ((lastSend!.lastAt - lastSend!.firstAt) / 1000)
        rec.add('achieved', kind, achieved)
        if (achieved < rate * 0.95) {
          const stopped = M < N
            ? ` (stopped after ${(N / rate * 1.5).toFixed(0)} s, ` +
              `${M.toLocaleString('en-US')} of ${N.toLocaleString('en-US')} sent)`
            : ''
          rec.notes.push(`${kind} run ${run + 1}: the sender reached only ${Math.round(achieved)} of ${rate} msg/s ` +
            `with 256 in flight${stopped}: the server could not keep up, so its latency is queueing delay, ` +
            `not the latency at ${rate} msg/s.`)
        }
        rec.add('slip', kind, lastSend!.slip.p99)
        rec.add('eld', kind, got.eventLoopP99)
        rec.add('cpuServer', kind, cpu.sets.server.core * 100)
        if (cpu.sets.postgres) rec.add('cpuPg', kind, cpu.sets.postgres.core * 100)
        rec.add('cpuLoadgen', kind, cpu.sets.loadgen.core * 100)
        rec.add('other', kind, cpu.otherCores * 100)
        // the same devices at a light load, well below saturation: the latency floor
        const L = await paced(Math.round(light * lightSeconds), 2_000_000, light)
        const lightGot = merge([await devices.collect()])
        if (lightGot.unique !== L) throw new Error(`light load: devices received ${lightGot.unique} of ${L}`)
        const ls = Float64Array.from(lightGot.latencies).sort()
        rec.add('lightP50', kind, percentile(ls, 50))
        rec.add('lightP99', kind, percentile(ls, 99))
        rec.add('lightMax', kind, ls[ls.length - 1])
        if (cluster && kind === 'herald') recordByProcess(rec, 'light', lightGot, run)
        await devices.disconnect()
      })
    })
  } finally {
    await Promise.all([sender.stop(), devices.stop()])
  }
  rec.notes.push(`${D} persistent devices on one load-generator process, the sender on another; sends paced on an ` +
    'hrtime schedule (checked every ms), at most 256 in flight; Herald\'s requests over keep-alive sockets. ' +
    'Latency is stamped by the sender just before the request/PUBLISH is written and read by the device on ' +
    'receipt (both processes read the same clock: performance.timeOrigin + performance.now()). A slip or ' +
    'event-loop delay near the p99 would mean the load generator, not the server, made the tail.')
  rec.notes.push('Mosquitto 2.0.11 from Debian serves WebSockets through libwebsockets without external-poll ' +
    'support; its author warns of "occasional latency problems" in that setup (eclipse-mosquitto/mosquitto#2578), ' +
    'so its tail here may be worse than Mosquitto over plain TCP.')
  if (cluster) {
    rec.notes.push(`Herald ran as ${ctx.nodes} processes on one database, the ${D} devices round robin over them; ` +
      `the sender sends each round of ${D} messages (one per device) through one process and the next round ` +
      `through the next, so ${Math.round(100 / ctx.nodes)}% of each device's messages are accepted by its own ` +
      'process ("same process") and the rest by another, which signals the device\'s process by NOTIFY at its ' +
      'commit ("other process"). Accept → receipt is the payload\'s sentAt (set when the request is accepted, ' +
      'before its commit, ms resolution) to the device\'s clock at receipt.')
    const delta = rec.metrics.get('crossDelta')!
    return rec.result(2, `latency, ${ctx.nodes} Herald processes`, performance.now() - started, 'crossDelta', {
      text: 'other-process p99 ≤ same-process p99 + 5 ms',
      check: () => delta.values.herald?.length ? median(delta.values.herald) <= 5 : undefined
    })
  }
  const p99 = rec.metrics.get('p99')!
  return rec.result(2, 'latency', performance.now() - started, 'p99', {
    text: 'Herald p99 ≤ 10 ms',
    check: () => p99.values.herald?.length ? median(p99.values.herald) <= 10 : undefined
  })
}

/** Herald as several processes: accept → receipt by whether the device's own process accepted the message. */
function recordByProcess (rec: Recorder, prefix: '' | 'light', got: Merged, run: number): void {
  const split = got.byProcess
  if (!split) throw new Error('devices reported no per-process split')
  const key = (k: string): string => prefix === '' ? k : `light${k[0].toUpperCase()}${k.slice(1)}`
  const sorted = (v: number[]): Float64Array => Float64Array.from(v).sort()
  const same = sorted(split.same.sentAtLatencies)
  const other = sorted(split.other.sentAtLatencies)
  if (same.length === 0 || other.length === 0) {
    rec.notes.push(`herald run ${run + 1}${prefix ? ' (light load)' : ''}: ${same.length} same-process and ` +
      `${other.length} other-process samples; no split`)
    return
  }
  rec.add(key('sameP50'), 'herald', percentile(same, 50))
  rec.add(key('sameP99'), 'herald', percentile(same, 99))
  rec.add(key('otherP50'), 'herald', percentile(other, 50))
  rec.add(key('otherP99'), 'herald', percentile(other, 99))
  if (prefix === '') {
    rec.add('crossDelta', 'herald', percentile(other, 99) - percentile(same, 99))
    rec.add('sameSendP99', 'herald', percentile(sorted(split.same.latencies), 99))
    rec.add('otherSendP99', 'herald', percentile(sorted(split.other.latencies), 99))
  }
}

function record (rec: Recorder, kind: System['kind'], _sys: System, latencies: number[], sentAt: number[]): void {
  const s = Float64Array.from(latencies).sort()
  rec.add('p50', kind, percentile(s, 50))
  rec.add('p90', kind, percentile(s, 90))
  rec.add('p99', kind, percentile(s, 99))
  rec.add('max', kind, s[s.length - 1])
  if (kind === 'herald' && sentAt.length > 0) {
    const a = Float64Array.from(sentAt).sort()
    rec.add('sentAtP50', kind, percentile(a, 50))
    rec.add('sentAtP99', kind, percentile(a, 99))
  }
}
