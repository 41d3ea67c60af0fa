// 6. Restart: time from spawning the server process to ready, with a million deliveries
// queued in Postgres (Herald: GET /readyz 200). The queue is seeded in SQL, as
// migrations/0001_herald.sql defines it: D persistent devices, one message per D deliveries
// (a topic message to every device), every delivery `queued`. After each start one device
// reconnects and its own queue (one row per message) is drained, to show the queue is live.
// The baselines keep nothing across a restart (in memory): theirs is spawn → first CONNACK.
import { type Ctx } from '../lib/context.js'
import { Worker } from '../lib/loadgen.js'
import { now } from '../lib/proc.js'
import { median, Recorder, type ScenarioResult } from '../lib/report.js'
import {
  createDatabase, JWT_SECRET, startAedes, startHerald, startMosquitto, type BenchDatabase, type System
} from '../lib/systems.js'

const DEVICES = 1_000

export async function restart (ctx: Ctx): Promise<ScenarioResult> {
  const started = performance.now()
  const total = ctx.sizes.restartDeliveries
  const messages = Math.ceil(total / DEVICES)
  const n = (v: number): string => v.toLocaleString('en-US')
  const rec = new Recorder()
  rec.metric('ready', `start → ready, ${n(messages * DEVICES)} queued deliveries (baselines: empty)`, 'ms', 'lower', 0)
  rec.metric('readyEmpty', 'start → ready, empty database', 'ms', 'info', 0)
  rec.metric('drain', `then: one device's ${n(messages)} queued → drained`, 'ms', 'lower', 0)
  rec.metric('stop', 'SIGTERM → exit', 'ms', 'info', 0)
  rec.metric('seed', `seeding ${n(messages * DEVICES)} deliveries in SQL (once)`, 's', 'info', 1)
  if (ctx.quick) rec.na('readyEmpty', 'herald', 'full mode only')
  for (const k of ['aedes', 'mosquitto'] as const) {
    rec.na('readyEmpty', k, 'always empty')
    rec.na('drain', k, 'nothing survives a restart')
    rec.na('seed', k, 'in memory')
  }

  let seeded: BenchDatabase | undefined
  let empty: BenchDatabase | undefined
  const device = await Worker.start('s6-device')
  try {
    if (ctx.systems.includes('herald')) {
      try {
        ctx.log(`6 restart: seeding ${n(messages * DEVICES)} queued deliveries`)
        seeded = await createDatabase(ctx.env, 's6-seeded')
        // quick mode leaves out the empty-database comparison
        if (!ctx.quick) empty = await createDatabase(ctx.env, 's6-empty')
        // the first start applies the migrations
        for (const db of [seeded, empty].filter(d => d !== undefined)) {
          const h = await startHerald(ctx.env, { label: 's6-migrate', db })
          await h.stop()
        }
        const t0 = performance.now()
        await seed(seeded, messages)
        rec.add('seed', 'herald', (performance.now() - t0) / 1000)
      } catch (err) {
        rec.errors.push(`herald seeding: ${(err as Error).message}`)
        ctx.log(`  ERROR ${(err as Error).message}`)
      }
    }
    for (let run = 0; run < ctx.runs; run++) {
      for (const kind of ctx.systems) {
        ctx.log(`6 restart: ${kind}, run ${run + 1}/${ctx.runs}`)
        let sys: System | undefined
        try {
          if (kind === 'herald') {
            if (!seeded) continue
            if (empty) {
              const e = await startHerald(ctx.env, { label: `s6-empty-r${run}`, db: empty })
              rec.add('readyEmpty', kind, e.readyMs)
              await e.stop()
            }
            sys = await startHerald(ctx.env, {
              label: `s6-r${run}`,
              db: seeded,
              profileName: ctx.profile ? `s6-herald-r${run}` : undefined,
              readyTimeoutMs: 120_000
            })
            rec.add('ready', kind, sys.readyMs)
            // device `seed-d{run}` holds one queued delivery per message
            await device.track({ expected: messages, samples: false })
            const t0 = now()
            const c = await device.connect({
              url: sys.wsUrl,
              spec: {
                idPrefix: 'seed-d', userPrefix: 'seed-u', from: run, to: run + 1, topics: [], secret: JWT_SECRET
              },
              clean: false,
              concurrency: 1,
              keepalive: 60
            })
            if (c.connected !== 1) throw new Error(`seeded device did not connect: ${c.errors.join('; ')}`)
            const done = await device.waitDone(60_000)
            rec.add('drain', kind, done.at - t0)
            await device.disconnect()
          } else {
            sys = kind === 'aedes' ? await startAedes(`s6-r${run}`) : await startMosquitto(ctx.env, `s6-r${run}`)
            rec.add('ready', kind, sys.readyMs)
          }
          const t1 = performance.now()
          await sys.stop()
          rec.add('stop', kind, performance.now() - t1)
          sys = undefined
        } catch (err) {
          rec.errors.push(`${kind} run ${run + 1}: ${(err as Error).message}`)
          ctx.log(`  ERROR ${(err as Error).message}`)
        } finally {
          await sys?.stop()
        }
      }
    }
  } finally {
    await device.stop()
    await seeded?.drop().catch(() => {})
    await empty?.drop().catch(() => {})
  }
  rec.notes.push(`Seeded with insert … select generate_series: ${n(DEVICES)} persistent devices, ` +
    `${n(messages)} topic messages, each queued for every device (${n(messages * DEVICES)} deliveries, ` +
    'status queued; the secondary indexes of deliveries dropped and rebuilt around the insert, with their ' +
    'migration definitions), then vacuum analyze and checkpoint. Ready = process spawned → first GET /readyz 200 ' +
    '(polled every 10 ms) for Herald, → first CONNACK over WebSocket for the baselines. ' +
    'Postgres keeps running across Herald\'s restarts.')
  const ready = rec.metrics.get('ready')!
  return rec.result(6, 'restart', performance.now() - started, 'ready', {
    text: `Herald ready ≤ 5 s with ${n(messages * DEVICES)} queued` +
      `${total < 1_000_000 ? ' (target is for 1,000,000)' : ''}`,
    check: () => ready.values.herald?.length ? median(ready.values.herald) <= 5_000 : undefined
  })
}

async function seed (db: BenchDatabase, messages: number): Promise<void> {
  const c = await db.pool.connect()
  try {
    await c.query('begin')
    await c.query("set local synchronous_commit = off; set local maintenance_work_mem = '256MB'")
    // skip the per-row foreign-key checks (needs superuser; the rows are consistent by construction)
    await c.query('savepoint fk')
    await c.query('set local session_replication_role = replica').catch(async () => {
      await c.query('rollback to savepoint fk')
    })
    // building the secondary indexes once afterwards is several times faster than keeping them
    // up to date row by row; the same definitions come back, so the schema ends up as migrated
    const { rows: indexes } = await c.query<{ name: string, def: string }>(
      `select indexname as name, indexdef as def from pg_indexes
       where schemaname = current_schema() and tablename = 'deliveries'
         and indexname not in (select conname from pg_constraint where conrelid = 'deliveries'::regclass)`)
    for (const i of indexes) await c.query(`drop index ${i.name}`)
    await c.query(
      `insert into devices (device_id, user_id, persistent, last_seen_at)
       select 'seed-d' || i, 'seed-u' || i, true, now() from generate_series(0, $1 - 1) i`, [DEVICES])
    await c.query(
      `insert into messages (id, target_kind, target, topic, title, body, priority, ttl, accepted_at, expires_at,
                             payload, recipients)
       select id, 'topic', '{"topic": "seed"}', 'seed', 'seed', repeat('x', 60), 'normal', 2419200, now(),
              now() + interval '28 days',
              convert_to(json_build_object('id', id, 'title', 'seed', 'body', repeat('x', 60),
                'data', json_build_object('b', g, 't', 0), 'priority', 'normal', 'sentAt', now(),
                'expiresAt', now() + interval '28 days', 'topic', 'seed')::text, 'UTF8'), $2
       from (select gen_random_uuid() as id, g from generate_series(1, $1) g) s
       order by g`, [messages, DEVICES])
    await c.query(
      `insert into deliveries (message_id, device_id, user_id, status, expires_at, queued_at)
       select m.id, 'seed-d' || d, 'seed-u' || d, 'queued', m.expires_at, m.accepted_at
       from messages m cross join generate_series(0, $1 - 1) d
       where m.topic = 'seed'
       order by m.seq, d`, [DEVICES])
    for (const i of indexes) await c.query(i.def)
    await c.query('commit')
  } catch (err) {
    await c.query('rollback').catch(() => {})
    throw err
  } finally {
    c.release()
  }
  await db.pool.query('vacuum analyze')
  await db.pool.query('checkpoint').catch(() => {})
}
