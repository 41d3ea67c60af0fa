// 2. Latency: a paced 2,000 msg/s for 10 s, round robin over online persistent devices.
// Each message carries its send stamp (taken just before the HTTP request / PUBLISH is
// written); the device takes receipt − stamp. Herald also from the payload's sentAt (the
// server's accept time, ms precision). A warm-up at the same rate comes first, unmeasured.
import { eachRun, serverCpu, withSystem, type Ctx } from '../lib/context.js'
import { merge, Worker } from '../lib/loadgen.js'
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
            plan: { kind: 'user-rr', users: { prefix: `lat${run}-u`, from: 0, to: D }, count, bBase },
            concurrency: 256,
            rate,
            pad: ctx.pad,
            maxMs: Math.max(2_000, count / rate * 1500)
          })
          if (sent.failed > 0) throw new Error(`${sent.failed} of ${sent.sent} sends failed: ${sent.errors.join('; ')}`)
          if (sent.ok < count) await devices.expect(sent.ok)
          await devices.waitDone(60_000)
          lastSend = sent
          return sent.ok
        }
        let lastSend: Awaited<ReturnType<Worker['send']>> | undefined
        // warm-up: same rate, not measured
        await paced(Math.round(rate * warm), 0)
        const meter = cpuMeter({ ...serverCpu(ctx, sys), loadgen: () => sender.cpuMs() + devices.cpuMs() })
        const M = await paced(N, 1_000_000)
        const cpu = meter.read()
        const got = merge([await devices.collect()])
        if (got.unique !== M) throw new Error(`devices received ${got.unique} of ${M}`)
        record(rec, kind, sys, got.latencies, got.sentAtLatencies)
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
  const p99 = rec.metrics.get('p99')!
  return rec.result(2, 'latency', performance.now() - started, 'p99', {
    text: 'Herald p99 ≤ 10 ms',
    check: () => p99.values.herald?.length ? median(p99.values.herald) <= 10 : undefined
  })
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
