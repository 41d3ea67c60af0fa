// 5. Connections: idle persistent WebSocket devices (clean=false, subscribed to their inbox at
// QoS 1, keep-alive 60 s) at each level, opened by load-generator processes of ≤ 5,000 sockets
// each on distinct loopback source addresses. Server RSS per connection at each level (over
// the server's RSS before the first device) and per connection added between the first and
// last level, connect rate per step, and the server's CPU while every device is idle.
import { eachRun, serverCpu, withSystem, type Ctx } from '../lib/context.js'
import { DeviceFleet, MAX_DEVICES_PER_WORKER } from '../lib/loadgen.js'
import { cpuMeter, rssBytes, sleep } from '../lib/proc.js'
import { median, Recorder, type ScenarioResult } from '../lib/report.js'
import { JWT_SECRET, MOSQUITTO_WS_NOTE } from '../lib/systems.js'

const KiB = 1024

export async function connections (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const levels = ctx.sizes.connectionLevels
  const top = levels[levels.length - 1]
  const n = (v: number): string => v.toLocaleString('en-US')
  const rec = new Recorder()
  for (const L of levels) {
    rec.metric(`rss${L}`, `${n(L)} devices: server RSS per connection`, 'KiB', 'lower', 1)
    rec.metric(`rate${L}`, `${n(L)} devices: connect rate (this step)`, 'devices/s', 'higher', 0)
  }
  const first = levels[0]
  if (levels.length > 1) {
    rec.metric('rssMarginal', `server RSS per connection added from ${n(first)} to ${n(top)}`, 'KiB', 'lower', 1)
  }
  rec.metric('connectCpu', 'server CPU per connect (CONNECT + SUBSCRIBE)', 'µs', 'lower', 0)
  rec.metric('connectCpuPg', 'Postgres CPU per connect', 'µs', 'lower', 0)
  rec.metric('connectLoadgen', 'load generator while connecting: busiest process', '% of a core', 'info', 0)
  rec.metric('idle', `${n(top)} idle devices: server CPU over ${ctx.sizes.idleSeconds} s (one PINGREQ each)`,
    '% of a core', 'lower', 1)
  rec.metric('idlePg', `${n(top)} idle devices: Postgres CPU`, '% of a core', 'lower', 1)
  rec.metric('rssBase', 'server RSS with no device', 'MiB', 'info', 0)
  rec.na('idlePg', 'aedes', 'no database')
  rec.na('connectCpuPg', 'aedes', 'no database')
  rec.na('connectCpuPg', 'mosquitto', 'no database')
  rec.na('idlePg', 'mosquitto', 'no database')

  // keep-alive = the idle window: every device sends exactly one PINGREQ in any window that
  // long (mqtt.js pings on a fixed period), so each system handles the same idle traffic
  const keepalive = ctx.sizes.idleSeconds
  const fleet = await DeviceFleet.start('s5-devices', top, MAX_DEVICES_PER_WORKER)
  try {
    await eachRun(ctx, rec, '5 connections', async (kind, run) => {
      // forget connections the previous run's server closed
      await fleet.track(() => 0)
      try {
        await withSystem(ctx, kind, `s5-${kind}-r${run}`, async sys => {
          await sleep(500)
          const rss0 = rssBytes(sys.pid)
          rec.add('rssBase', kind, rss0 / 2 ** 20)
          let connected = 0
          let rssFirst = 0
          const connectMeter = cpuMeter({
            ...serverCpu(ctx, sys),
            ...Object.fromEntries(fleet.workers.map((w, k) => [`w${k}`, () => w.cpuMs()]))
          })
          let connectMs = 0
          for (const L of levels) {
            const spec = {
              idPrefix: `cn${run}-d`, userPrefix: `cn${run}-u`, topics: ['users/{user}/inbox'], secret: JWT_SECRET
            }
            const conn = await fleet.connect(sys.wsUrl, spec, connected, L, { concurrency: 50, keepalive })
            if (conn.failed > 0) {
              throw new Error(`${conn.failed} of ${L - connected} devices did not connect: ${conn.errors.join('; ')}`)
            }
            rec.add(`rate${L}`, kind, (L - connected) / (conn.ms / 1000))
            connected = L
            connectMs += conn.ms
            if (L === top) {
              // CPU over every connect step (the settle pauses in between are idle)
              const c = connectMeter.read()
              rec.add('connectCpu', kind, c.sets.server.cpuMs * 1000 / top)
              if (c.sets.postgres) rec.add('connectCpuPg', kind, c.sets.postgres.cpuMs * 1000 / top)
              const busiestMs = Math.max(...fleet.workers.map((_, k) => c.sets[`w${k}`].cpuMs))
              rec.add('connectLoadgen', kind, busiestMs / connectMs * 100)
            }
            await sleep(ctx.quick ? 1_000 : 3_000)
            if (fleet.lost() > 0) throw new Error(`${fleet.lost()} connections were closed by the server`)
            const rss = rssBytes(sys.pid)
            rec.add(`rss${L}`, kind, (rss - rss0) / L / KiB)
            if (L === first) rssFirst = rss
            else if (L === top) rec.add('rssMarginal', kind, (rss - rssFirst) / (top - first) / KiB)
            ctx.log(`  ${kind}: ${n(L)} connected, ${(conn.ms / 1000).toFixed(1)} s for this step, ` +
              `RSS ${(rssBytes(sys.pid) / 2 ** 20).toFixed(0)} MiB`)
          }
          const meter = cpuMeter(serverCpu(ctx, sys))
          await sleep(ctx.sizes.idleSeconds * 1000)
          const cpu = meter.read()
          rec.add('idle', kind, cpu.sets.server.core * 100)
          if (cpu.sets.postgres) rec.add('idlePg', kind, cpu.sets.postgres.core * 100)
          if (fleet.lost() > 0) throw new Error(`${fleet.lost()} connections were closed by the server while idle`)
        })
      } finally {
        // the server's stop closed the sockets; this clears the load generator's side
        await fleet.disconnect()
      }
    })
  } finally {
    await fleet.stop()
  }
  const addresses = fleet.workers.map(w => w.localAddress).join(', ')
  rec.notes.push(`Devices opened 50 at a time per load-generator process (${fleet.workers.length} processes, ` +
    `≤ ${n(MAX_DEVICES_PER_WORKER)} sockets each, source addresses ${addresses}), ` +
    `levels reached one after the other on one server instance per run, keep-alive ${keepalive} s (so the idle ` +
    'window holds exactly one PINGREQ per device for every system). RSS per connection = (RSS at the level − RSS ' +
    `before the first device) ÷ devices, ${ctx.quick ? 1 : 3} s after the step; it includes what grows once ` +
    'whatever the count (a heap, Herald\'s 32 MB young generation), which the RSS per connection added between ' +
    'the first and last level leaves out.')
  if (ctx.systems.includes('mosquitto')) rec.notes.push(MOSQUITTO_WS_NOTE)
  const rss = rec.metrics.get(`rss${top}`)!
  return rec.result(5, 'connections', performance.now() - started, `rss${top}`, {
    text: `≤ 10 KiB per connection at ${n(top)}`,
    check: () => rss.values.herald?.length ? median(rss.values.herald) <= 10 : undefined
  })
}
