// The admin's delivery log (server/store/adminLog.ts) on a seeded history: every filter, walked
// page by page with its cursors, returns exactly what a plain SQL query over the same rows does,
// newest first, each message once. Timing with a million deliveries: `npm run bench:admin`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { seedDeliveryHistory } from './helpers/adminSeed.js'
import { listMessageLog, type AdminLogFilter, type AdminLogKey } from '../server/store/adminLog.js'
import { readOverview } from '../server/store/adminStats.js'

let db: TestDatabase
const base = new Date()
const minute = 60_000

before(async () => {
  db = await createTestDatabase()
  await seedDeliveryHistory(db.pool, { messages: 3_000, users: 40, topicMessages: 2, spacingMs: 1_000, base })
  // many messages accepted at the same instant: the cursor must tell them apart by id
  await db.pool.query("update messages set accepted_at = date_trunc('minute', accepted_at) where accepted_at < $1",
    [new Date(base.getTime() - 20 * minute)])
  await db.pool.query('update deliveries d set queued_at = m.accepted_at from messages m where m.id = d.message_id')
  // undelivered rows the sweep has not reached yet: past their TTL (they read expired), ttl-0
  // rows past their grace (expired) and within it (still queued)
  await db.pool.query(
    "update deliveries set expires_at = now() - interval '1 second' where status in ('queued', 'sent') and seq % 7 = 0")
  await db.pool.query(
    `update deliveries set expires_at = queued_at
     where status = 'queued' and seq % 7 = 3 and queued_at < now() - interval '1 minute'`)
  await db.pool.query(
    `update deliveries set expires_at = queued_at
     where seq in (select seq from deliveries
                   where status = 'queued' and queued_at > now() - interval '20 seconds' limit 3)`)
  // titles that a LIKE pattern built without escaping would confuse
  for (const [i, title] of ['Deal: 100%_sure', 'Deal: 100xxsure', 'Deal: 100%Xsure', 'path C:\\temp'].entries()) {
    await db.pool.query(
      `insert into messages (id, target_kind, target, title, priority, ttl, accepted_at, expires_at, payload,
                             recipients)
       values ($1, 'user', '{"user": "user-1"}', $2, 'normal', 60, now() - $3 * interval '1 second',
               now() + interval '1 minute', '\\x7b7d', 0)`,
      [`11111111-0000-4000-8000-00000000000${i}`, title, i])
  }
  await db.pool.query('analyze messages, deliveries')
})
after(async () => { await db?.drop() })

// What a delivery row (alias d) reads as, written out here independently of the server's
// store/deliveryStatus.ts: an undelivered row past its TTL (a ttl-0 one, 30 s past) is expired.
const READS_AS = `(case when d.status in ('queued', 'sent') and d.expires_at <= now() and
                             (d.expires_at > d.queued_at or d.expires_at <= now() - interval '30 seconds')
                        then 'expired' else d.status end)`

/**
 * What the log must return: messages matching the filter (a delivery matching for delivery filters),
 * newest first (ties: last accepted first).
 */
async function expected (f: AdminLogFilter): Promise<string[]> {
  const cond: string[] = []
  const dcond: string[] = []
  const params: unknown[] = []
  const p = (v: unknown): string => { params.push(v); return `$${params.length}` }
  if (f.messageId) cond.push(`m.id = ${p(f.messageId)}`)
  if (f.since) cond.push(`m.accepted_at >= ${p(f.since)}`)
  if (f.until) cond.push(`m.accepted_at < ${p(f.until)}`)
  if (f.text) cond.push(`position(lower(${p(f.text)}) in lower(m.title)) > 0`)
  if (f.user) dcond.push(`d.user_id = ${p(f.user)}`)
  if (f.device) dcond.push(`d.device_id = ${p(f.device)}`)
  if (f.status) dcond.push(`${READS_AS} = ${p(f.status)}`)
  if (dcond.length > 0) {
    cond.push(`exists (select 1 from deliveries d where d.message_id = m.id and ${dcond.join(' and ')})`)
  }
  const { rows } = await db.pool.query<{ id: string }>(
    `select m.id from messages m ${cond.length ? 'where ' + cond.join(' and ') : ''}
     order by m.accepted_at desc, m.seq desc`, params)
  return rows.map(r => r.id)
}

async function walk (f: AdminLogFilter, limit: number): Promise<string[]> {
  const ids: string[] = []
  let after: AdminLogKey | undefined
  for (let page = 0; page < 10_000; page++) {
    const { rows, next } = await listMessageLog(db.pool, f, after, limit)
    ids.push(...rows.map(r => r.id))
    if (!next) {
      assert.ok(rows.length <= limit)
      return ids
    }
    assert.equal(rows.length, limit, 'only the last page is short')
    after = next
  }
  throw new Error('too many pages')
}

const ago = (minutes: number): Date => new Date(base.getTime() - minutes * minute)
const FILTERS: Array<[string, AdminLogFilter]> = [
  ['no filter', {}],
  ['user', { user: 'user-7' }],
  ['device', { device: 'user-8-dev-2' }],
  ['status', { status: 'queued' }],
  ['user + status', { user: 'user-5', status: 'delivered' }],
  ['device + status', { device: 'user-2-dev-2', status: 'queued' }],
  ['time range (ties inside)', { since: ago(40), until: ago(25) }],
  ['until alone', { until: ago(30) }],
  ['since + status', { since: ago(15), status: 'expired' }],
  ['status expired (stored, and past the TTL unmarked)', { status: 'expired' }],
  ['user + status expired', { user: 'user-3', status: 'expired' }],
  ['device + status sent', { device: 'user-2-dev-2', status: 'sent' }],
  ['status + until (the bound inside a run of equal times)',
    { status: 'delivered', until: new Date(Math.floor(ago(35).getTime() / minute) * minute) }],
  ['text', { text: 'DIGEST' }],
  ['text + user', { text: 'order', user: 'user-3' }],
  ['text + status', { text: 'reminder', status: 'expired' }],
  ['text with LIKE characters', { text: '100%_sure' }],
  ['text with a backslash', { text: 'c:\\t' }],
  ['broadcasts by text', { text: 'broadcast' }],
  ['message id', { messageId: '00000000-0000-4000-8000-000000000001' }],
  ['message id + a user it did not go to', { messageId: '00000000-0000-4000-8000-000000000001', user: 'nobody' }]
]

for (const [name, filter] of FILTERS) {
  test(`log filter: ${name}`, async () => {
    const want = await expected(filter)
    const got = await walk(filter, 7)
    assert.equal(got.length, want.length, `${got.length} messages, expected ${want.length}`)
    assert.deepEqual(got, want)
  })
}

test('the filters used above are not all empty (the seed is what the test assumes)', async () => {
  for (const f of [{ text: '100%_sure' }, { text: 'c:\\t' }]) {
    assert.equal((await expected(f)).length, 1, JSON.stringify(f))
  }
  for (const f of [
    { user: 'user-7' }, { device: 'user-8-dev-2' }, { user: 'user-5', status: 'delivered' as const },
    { text: 'order', user: 'user-3' }, { since: ago(40), until: ago(25) }
  ]) {
    assert.ok((await expected(f)).length > 10, JSON.stringify(f))
  }
})

test('a log row sums up its message: target, delivered out of total, per-status counts, slowest device', async () => {
  const { rows } = await listMessageLog(db.pool, { text: 'broadcast 2' }, undefined, 10)
  assert.equal(rows.length, 1)
  const b = rows[0]
  assert.deepEqual(b.target, { kind: 'topic', topic: 'news' })
  const devices = (await db.pool.query<{ n: number }>('select count(*)::int as n from devices')).rows[0].n
  assert.equal(b.recipients, devices)
  const byStatus = await db.pool.query<{ status: string, n: number }>(
    `select ${READS_AS} as status, count(*)::int as n from deliveries d where d.message_id = $1 group by 1`, [b.id])
  assert.deepEqual(Object.fromEntries(Object.entries(b.counts).filter(([, n]) => n > 0)),
    Object.fromEntries(byStatus.rows.map(r => [r.status, r.n])), 'counts by what each row reads as')
  assert.ok(b.counts.expired > 0, 'the seed left some of its rows past their TTL')
  assert.equal(b.counts.delivered + b.counts.queued + b.counts.expired, devices)
  assert.equal(b.delivered, b.counts.delivered)
  assert.deepEqual(b.slowest?.ms, 40)

  const one = (await listMessageLog(db.pool, { user: 'user-4' }, undefined, 1)).rows[0]
  assert.equal(one.target.kind, 'user')
  assert.equal(one.target.user, 'user-4')
  const rowsOfMessage = await db.pool.query(
    'select status, delivered_at - queued_at as took, device_id from deliveries where message_id = $1', [one.id])
  assert.equal(one.recipients, rowsOfMessage.rowCount)
  assert.equal(Object.values(one.counts).reduce((a, b) => a + b, 0), rowsOfMessage.rowCount)
})

test('the overview counts from the same tables', async () => {
  await db.pool.query("insert into nodes (id) values ('node-test')")
  await db.pool.query(
    "update devices set connected_node = 'node-test' where device_id like 'user-1-%' or device_id like 'user-2-%'")
  const o = await readOverview(db.pool)
  assert.equal(o.devicesOnline, 2 + 3)
  const waiting = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from deliveries d where ${READS_AS} in ('queued', 'sent')`)
  assert.equal(o.waiting, waiting.rows[0].n)
  assert.ok(o.waiting > 0)
  const expiredDay = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from deliveries d
     where ${READS_AS} = 'expired' and expires_at > now() - interval '1 day'`)
  assert.equal(o.expiredLastDay, expiredDay.rows[0].n)
  assert.equal(o.lastHour.minutes.length, 60)
  // the seed's last hour: 3,000 messages a second apart, the newest just now
  const acceptedLastHour = o.lastHour.accepted.reduce((a, b) => a + b, 0)
  const want = await db.pool.query<{ n: number }>(
    "select count(*)::int as n from messages where accepted_at >= date_trunc('minute', now()) - interval '59 minutes'")
  assert.equal(acceptedLastHour, want.rows[0].n)
  assert.ok(o.latency.samples > 0 && o.latency.p50! > 0 && o.latency.p95! >= o.latency.p50!)
})
