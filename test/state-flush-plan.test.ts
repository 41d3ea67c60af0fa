// A state flush (store/deliveries.ts applyDeliveryUpdates) finds its rows by seq, whatever the
// statistics say. Planned from an ANALYZE that saw few pending rows, the flush once read every
// pending row for each of its own and fell tens of seconds behind under load (bench scenario 7):
// here the statistics are made that stale on purpose, the plan Postgres settles on for a
// prepared statement (the generic one) is forced, and auto_explain shows the plan it ran.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { applyDeliveryUpdates, recordReceipts } from '../server/store/deliveries.js'
import { createPool } from '../server/db/pool.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'

let db: TestDatabase | undefined
after(async () => { await db?.drop() })

test('a state flush reads its rows by seq when ANALYZE last saw no pending rows', async () => {
  db = await createTestDatabase()
  const seed = db.pool
  await seed.query(`insert into messages
      (id, target_kind, target, priority, ttl, accepted_at, expires_at, payload, recipients)
    select gen_random_uuid(), 'users', '{}', 'normal', 3600, now(), now() + interval '1 h', '\\x7b7d', 1
    from generate_series(1, 25000)`)
  // 20,000 delivered rows, analysed: as far as the statistics know, nothing is pending
  await seed.query(`insert into deliveries
      (message_id, device_id, user_id, status, expires_at, queued_at, sent_at, delivered_at)
    select id, 'd' || seq % 10, 'u', 'delivered', now() + interval '1 h', now(), now(), now()
    from messages where seq <= 20000`)
  await seed.query('vacuum analyze deliveries')
  // then 5,000 written to their devices and not yet acknowledged, as under load
  const { rows: sent } = await seed.query<{ seq: number, messageId: string, deviceId: string }>(
    `insert into deliveries (message_id, device_id, user_id, status, expires_at, queued_at, sent_at)
     select id, 'd' || seq % 10, 'u', 'sent', now() + interval '1 h', now(), now() from messages where seq > 20000
     returning seq, message_id as "messageId", device_id as "deviceId"`)

  // one connection, showing the plan of every statement it runs
  const pool = createPool({ connectionString: db.url, max: 1 })
  const plans: string[] = []
  pool.on('connect', client => client.on('notice', notice => plans.push(notice.message ?? '')))
  try {
    await pool.query("load 'auto_explain'")
    await pool.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_level = notice;
      set client_min_messages = notice; set plan_cache_mode = force_generic_plan`)
    const flushed = sent.slice(0, 500).map(r => ({ seq: Number(r.seq), at: Date.now() }))
    const ended = sent.slice(500, 1000).map(r => ({ seq: Number(r.seq), reason: 'connection-ended' as const }))
    await applyDeliveryUpdates(pool, { delivered: flushed, expired: ended })

    for (const status of ['delivered', 'expired']) {
      const plan = plans.find(p => p.includes(`update deliveries d set status = '${status}'`))
      assert.ok(plan, `auto_explain showed the ${status} statement's plan (got ${plans.length} plans)`)
      assert.match(plan, /Index Scan using deliveries_pkey on deliveries d/, plan)
      assert.doesNotMatch(plan, /deliveries_expiring|Bitmap Heap Scan on deliveries|Seq Scan on deliveries/, plan)
    }
    // receipts (the same flush) find each delivery by message and device, not every row of the device
    const displayed = sent.slice(1000, 1100).map(r => ({ ...r, event: 'displayed' as const, at: new Date() }))
    assert.equal(await recordReceipts(pool, displayed), 100)
    const receipts = plans.find(p => p.includes('update deliveries d set\n       displayed_at'))
    assert.ok(receipts, 'auto_explain showed the receipts statement\'s plan')
    assert.match(receipts, /Index Scan using deliveries_message_id_device_id_key on deliveries d/, receipts)
  } finally {
    await pool.end()
  }
  const { rows: [{ n }] } = await seed.query<{ n: number }>(
    `select count(*) filter (where status = 'delivered' and seq = any($1::bigint[])) +
            count(*) filter (where status = 'expired' and seq = any($2::bigint[]))::int as n from deliveries`,
    [sent.slice(0, 500).map(r => r.seq), sent.slice(500, 1000).map(r => r.seq)])
  assert.equal(Number(n), 1000, 'and it recorded them')
})
