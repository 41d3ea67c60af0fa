// The delivery log, GET /v1/messages: newest first, keyset pages through nextCursor, filters,
// and precise 400s for bad query parameters.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, type TestHerald, type TestDevice } from './helpers/herald.js'
import { device, offlineDevice, send, waitForStatus } from './helpers/delivery.js'

let h: TestHerald
const open: TestDevice[] = []
before(async () => { h = await startTestHerald() })
after(async () => {
  await Promise.all(open.map(d => d.close()))
  await h.stop()
})

async function log (query: string): Promise<{ items: any[], nextCursor: string | null }> {
  const res = await h.api(`/v1/messages?${query}`)
  assert.equal(res.status, 200, `${query}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

test('25 messages to a user page as 10, 10, 5 through nextCursor, newest first, no duplicates or gaps', async () => {
  await offlineDevice(h, 'paula', 'paula-phone')
  const sent: string[] = []
  for (let i = 0; i < 25; i++) sent.push((await send(h, { to: { user: 'paula' }, title: `m${i}` })).id)
  // another user's deliveries must not show up
  await offlineDevice(h, 'quentin', 'quentin-phone')
  await send(h, { to: { user: 'quentin' }, title: 'not paula' })

  const pages: any[][] = []
  let cursor: string | null = null
  do {
    const page: { items: any[], nextCursor: string | null } =
      await log(`user=paula&limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    pages.push(page.items)
    cursor = page.nextCursor
    assert.ok(pages.length <= 4, 'pagination ends')
  } while (cursor !== null)

  assert.deepEqual(pages.map(p => p.length), [10, 10, 5])
  const all = pages.flat()
  assert.deepEqual(all.map(r => r.messageId), [...sent].reverse(), 'every delivery once, newest first')
  assert.deepEqual(all.map(r => r.title), sent.map((_, i) => `m${i}`).reverse())
  for (const row of all) {
    assert.equal(row.userId, 'paula')
    assert.equal(row.deviceId, 'paula-phone')
    assert.equal(row.status, 'queued')
    assert.ok(row.queuedAt)
    assert.ok(!('seq' in row), 'the internal seq is not exposed')
    for (const key of [
      'messageId', 'deviceId', 'userId', 'status', 'queuedAt', 'sentAt', 'deliveredAt', 'displayedAt', 'openedAt'
    ]) {
      assert.ok(key in row, `${key} in ${JSON.stringify(row)}`)
    }
  }
  const times = all.map(r => Date.parse(r.queuedAt))
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first by queuedAt too')

  // a page size that divides the total exactly: all 25, and a next page, if offered, is empty and last
  const whole = await log('user=paula&limit=25')
  assert.deepEqual(whole.items.map(r => r.messageId), [...sent].reverse())
  if (whole.nextCursor !== null) {
    assert.deepEqual(
      await log(`user=paula&limit=25&cursor=${encodeURIComponent(whole.nextCursor)}`), { items: [], nextCursor: null })
  }

  // a cursor stays valid while newer messages arrive: the next page is unchanged
  const first = await log('user=paula&limit=10')
  const newer = await send(h, { to: { user: 'paula' }, title: 'newer' })
  const second = await log(`user=paula&limit=10&cursor=${encodeURIComponent(first.nextCursor!)}`)
  assert.deepEqual(second.items.map(r => r.messageId), pages[1].map(r => r.messageId))
  assert.equal((await log('user=paula&limit=1')).items[0].messageId, newer.id)
})

test('filters: status, device, since and until', async () => {
  const phone = await device(h, 'rosa', 'rosa-phone')
  open.push(phone)
  await offlineDevice(h, 'rosa', 'rosa-tablet')
  const sent: Array<{ id: string, at: number }> = []
  for (let i = 0; i < 3; i++) {
    // each accept on a later millisecond, so since/until can split between them
    while (sent.length > 0 && Date.now() <= sent.at(-1)!.at) await new Promise(resolve => setImmediate(resolve))
    const s = await send(h, { to: { user: 'rosa' }, title: `r${i}` })
    assert.equal(s.recipients, 2)
    sent.push({ id: s.id, at: Date.now() })
  }
  await phone.waitFor(3)
  for (const s of sent) await waitForStatus(h, s.id, 'rosa-phone', 'delivered')
  const newestFirst = sent.map(s => s.id).reverse()

  const delivered = await log('user=rosa&status=delivered')
  assert.deepEqual(delivered.items.map(r => r.messageId), newestFirst)
  assert.ok(delivered.items.every(r => r.deviceId === 'rosa-phone' && r.status === 'delivered' && r.deliveredAt))
  const queued = await log('user=rosa&status=queued')
  assert.deepEqual(queued.items.map(r => r.messageId), newestFirst)
  assert.ok(queued.items.every(r => r.deviceId === 'rosa-tablet' && r.deliveredAt === null))
  assert.deepEqual((await log('user=rosa&status=revoked')).items, [])

  const tablet = await log('device=rosa-tablet')
  assert.deepEqual(tablet.items.map(r => `${r.deviceId}:${r.messageId}`), newestFirst.map(id => `rosa-tablet:${id}`))
  assert.deepEqual((await log('device=rosa-phone&status=queued')).items, [], 'filters combine')
  assert.equal((await log('user=rosa')).items.length, 6)

  // since is inclusive, until exclusive, on queuedAt
  const rows = (await log('device=rosa-phone')).items.reverse() // oldest first
  const t = rows.map(r => r.queuedAt as string)
  assert.ok(Date.parse(t[0]) < Date.parse(t[1]) && Date.parse(t[1]) < Date.parse(t[2]), JSON.stringify(t))
  const since = await log(`device=rosa-phone&since=${encodeURIComponent(t[1])}`)
  assert.deepEqual(since.items.map(r => r.messageId), [sent[2].id, sent[1].id])
  const until = await log(`device=rosa-phone&until=${encodeURIComponent(t[1])}`)
  assert.deepEqual(until.items.map(r => r.messageId), [sent[0].id])
  const window = await log(`device=rosa-phone&since=${encodeURIComponent(t[1])}&until=${encodeURIComponent(t[2])}`)
  assert.deepEqual(window.items.map(r => r.messageId), [sent[1].id])
  const future = new Date(Date.now() + 3600_000).toISOString()
  assert.deepEqual((await log(`user=rosa&since=${future}`)).items, [])

  // a filtered log pages too
  const p1 = await log('user=rosa&status=queued&limit=2')
  assert.equal(p1.items.length, 2)
  const p2 = await log(`user=rosa&status=queued&limit=2&cursor=${encodeURIComponent(p1.nextCursor!)}`)
  assert.deepEqual([...p1.items, ...p2.items].map(r => r.messageId), newestFirst)
  assert.equal(p2.nextCursor, null)
  await phone.close()
})

test('bad query parameters get a 400 problem naming the field', async () => {
  const cases: Array<[string, string]> = [
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from('x:12').toString('base64url')}`, 'cursor'],
    ['limit=0', 'limit'],
    ['limit=201', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=-5', 'limit'],
    ['limit=2.5', 'limit'],
    ['status=pending', 'status'],
    ['status=', 'status'],
    ['since=yesterday', 'since'],
    ['until=2026-13-45T99:00:00Z', 'until'],
    ['limit=1&limit=2', 'limit'],
    ['colour=blue', 'colour']
  ]
  for (const [query, field] of cases) {
    const res = await h.api(`/v1/messages?${query}`)
    assert.equal(res.status, 400, `${query}: ${res.status} ${JSON.stringify(res.body)}`)
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, query)
    assert.equal(res.body.status, 400)
    assert.equal(res.body.code, 'invalid-request', query)
    assert.ok(Array.isArray(res.body.errors) && res.body.errors.some((e: { field: string }) => e.field === field),
      `${query}: errors name ${field}: ${JSON.stringify(res.body)}`)
    assert.match(res.body.detail, new RegExp(field), `${query}: detail names the field`)
  }

  // every bad parameter is reported at once
  const many = await h.api('/v1/messages?limit=0&status=nope&cursor=zzz')
  assert.equal(many.status, 400)
  assert.deepEqual(many.body.errors.map((e: { field: string }) => e.field).sort(), ['cursor', 'limit', 'status'])

  const noKey = await fetch(`${h.url}/v1/messages?user=x`)
  assert.equal(noKey.status, 401)
})
