// What the ledger reads say, against a real server: a message whose TTL passed reads `expired`
// everywhere at once (not when the sweep gets to it, 30 s later), a ttl-0 message in flight
// does not, and every log lists a batch in reverse accept order, page after page, while new
// messages arrive.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, ADMIN_PASSWORD, type TestHerald, type TestDevice } from './helpers/herald.js'
import { countPendingDeliveries } from '../server/store/deliveries.js'
import { device, getMessage, listDevices, offlineDevice, send, waitForStatus, waitUntil } from './helpers/delivery.js'

let h: TestHerald
let admin: { cookie: string }
const open: TestDevice[] = []

before(async () => {
  h = await startTestHerald()
  const res = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'admin', password: ADMIN_PASSWORD })
  })
  assert.equal(res.status, 200)
  admin = { cookie: res.headers.get('set-cookie')!.split(';')[0] }
})
after(async () => {
  await Promise.all(open.map(d => d.close()))
  await h?.stop()
})

async function adminGet (path: string): Promise<any> {
  const res = await fetch(`${h.url}/admin/api${path}`, { headers: { cookie: admin.cookie } })
  assert.equal(res.status, 200, `${path}: ${res.status}`)
  return res.json()
}

async function restLog (query: string): Promise<{ items: any[], nextCursor: string | null }> {
  const res = await h.api(`/v1/messages?${query}`)
  assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`)
  return res.body
}

// What herald_pending_deliveries reports (the gauge caches it for 15 s between scrapes)
const pendingMetric = async (): Promise<number> => countPendingDeliveries(h.db.pool)

/** Every read of one delivery's status, side by side. */
async function readEverywhere (id: string, user: string, deviceId: string): Promise<Record<string, unknown>> {
  const rest = (await getMessage(h, id)).deliveries.find((d: any) => d.deviceId === deviceId)?.status
  const log = (await restLog(`device=${deviceId}`)).items.find(r => r.messageId === id)?.status
  const inQueued = (await restLog(`device=${deviceId}&status=queued`)).items.some(r => r.messageId === id)
  const inExpired = (await restLog(`device=${deviceId}&status=expired`)).items.some(r => r.messageId === id)
  const pending = (await listDevices(h, user)).find(d => d.deviceId === deviceId)?.pending
  const adminRow = (await adminGet(`/log?device=${deviceId}`)).items.find((r: any) => r.id === id)
  const adminQueued = (await adminGet(`/log?device=${deviceId}&status=queued`)).items.some((r: any) => r.id === id)
  const adminExpired = (await adminGet(`/log?device=${deviceId}&status=expired`)).items.some((r: any) => r.id === id)
  const detail = (await adminGet(`/messages/${id}`)).deliveries.find((d: any) => d.deviceId === deviceId)?.status
  return { rest, log, inQueued, inExpired, pending, adminCounts: adminRow?.counts, adminQueued, adminExpired, detail }
}

const queuedEverywhere = {
  rest: 'queued',
  log: 'queued',
  inQueued: true,
  inExpired: false,
  pending: 1,
  adminCounts: { queued: 1, sent: 0, delivered: 0, expired: 0, replaced: 0, revoked: 0 },
  adminQueued: true,
  adminExpired: false,
  detail: 'queued'
}
const expiredEverywhere = {
  rest: 'expired',
  log: 'expired',
  inQueued: false,
  inExpired: true,
  pending: 0,
  adminCounts: { queued: 0, sent: 0, delivered: 0, expired: 1, replaced: 0, revoked: 0 },
  adminQueued: false,
  adminExpired: true,
  detail: 'expired'
}

test('a message whose TTL passed reads expired in every read at once, before the sweep marks it', async () => {
  await offlineDevice(h, 'lena', 'lena-phone')
  const pendingBefore = await pendingMetric()
  const { id } = await send(h, { to: { user: 'lena' }, title: 'short-lived', ttl: 2 })
  const expiresAt = Date.parse((await getMessage(h, id)).expiresAt)
  assert.deepEqual(await readEverywhere(id, 'lena', 'lena-phone'), queuedEverywhere)
  assert.equal(await pendingMetric(), pendingBefore + 1)
  const waitingBefore = (await adminGet('/overview')).waiting

  // the TTL ends; wait for it to pass (no event to wait for: the clock is the event)
  await new Promise(resolve => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 50))
  assert.deepEqual(await readEverywhere(id, 'lena', 'lena-phone'), expiredEverywhere)
  assert.equal(await pendingMetric(), pendingBefore)
  assert.equal((await adminGet('/overview')).waiting, waitingBefore - 1)
  // none of this was the sweep's doing: it leaves rows 30 s past their TTL alone
  const stored = await h.db.pool.query('select status from deliveries where message_id = $1', [id])
  assert.deepEqual(stored.rows, [{ status: 'queued' }], 'the stored row is not marked yet')
})

test('a ttl-0 message in flight to an online device is not reported expired, and ends delivered', async () => {
  const phone = await device(h, 'milo', 'milo-phone')
  open.push(phone)
  // hold the PUBACK (mqtt.js acknowledges when its message handler calls back)
  const held: Array<() => void> = []
  const client = phone.client as unknown as { handleMessage: (packet: unknown, callback: () => void) => void }
  client.handleMessage = (_packet, callback) => { held.push(callback) }
  const { id } = await send(h, { to: { user: 'milo' }, title: 'now or never', ttl: 0 })
  const row = await waitForStatus(h, id, 'milo-phone', 'sent')
  // its expires_at is its accept time, already past: it still reads sent, and waiting
  assert.equal(Date.parse((await getMessage(h, id)).expiresAt), Date.parse(row.queuedAt))
  await new Promise(resolve => setTimeout(resolve, 1_000))
  const sentRead = await readEverywhere(id, 'milo', 'milo-phone')
  assert.equal(sentRead.rest, 'sent')
  assert.equal(sentRead.log, 'sent')
  assert.equal(sentRead.detail, 'sent')
  assert.equal(sentRead.inExpired, false)
  assert.equal(sentRead.adminExpired, false)
  assert.equal(sentRead.pending, 1)
  assert.equal((sentRead.adminCounts as Record<string, number>).sent, 1)

  await waitUntil('the device to hold the message', async () => held.length > 0)
  client.handleMessage = (_packet, callback) => callback()
  for (const ack of held.splice(0)) ack()
  await waitForStatus(h, id, 'milo-phone', 'delivered')
  const done = await readEverywhere(id, 'milo', 'milo-phone')
  assert.equal(done.log, 'delivered')
  assert.equal(done.detail, 'delivered')
  assert.equal(done.pending, 0)
})

/** Every page of a log, following its cursor, with `between` run after each page. */
async function walk (
  read: (cursor: string | null) => Promise<{ ids: string[], next: string | null }>, between = async () => {}
): Promise<string[][]> {
  const pages: string[][] = []
  let cursor: string | null = null
  do {
    const page = await read(cursor)
    pages.push(page.ids)
    cursor = page.next
    await between()
    assert.ok(pages.length < 1000, 'the walk ends')
  } while (cursor !== null)
  return pages
}

const restPages = (query: string) => async (cursor: string | null) => {
  const page = await restLog(`${query}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
  return { ids: page.items.map(r => r.messageId), next: page.nextCursor }
}
const adminPages = (query: string) => async (cursor: string | null) => {
  const page = await adminGet(`/log?${query}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
  return { ids: page.items.map((r: any) => r.id), next: page.next }
}

test('every log lists a batch in reverse accept order, across pages, while new messages arrive', async () => {
  await offlineDevice(h, 'nina', 'nina-phone')
  const N = 200
  const res = await h.api('/v1/messages/batch', {
    body: { messages: Array.from({ length: N }, (_, i) => ({ to: { user: 'nina' }, title: `b${i}` })) }
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  const batch: string[] = res.body.messages.map((m: { id: string }) => m.id)
  assert.equal(batch.length, N)
  const newestFirst = [...batch].reverse()
  // the batch shares one accept time, or a few: the order cannot come from it alone
  const times = new Set((await restLog('device=nina-phone&limit=200')).items.map(r => r.queuedAt))
  assert.ok(times.size < N / 4, `${times.size} distinct accept times`)

  // new messages between page reads: the pages already begun go on unchanged
  let extra = 0
  const sendMore = async (): Promise<void> => {
    extra++
    await send(h, { to: { user: 'nina' }, title: `later ${extra}` })
  }
  const logs: Array<[string, (cursor: string | null) => Promise<{ ids: string[], next: string | null }>]> = [
    ['REST log by device', restPages('device=nina-phone&limit=7')],
    ['REST log by user', restPages('user=nina&limit=9')],
    ['REST log, status queued', restPages('user=nina&status=queued&limit=11')],
    ['admin log by user', adminPages('user=nina&limit=7')],
    ['admin log by status', adminPages('status=queued&limit=8')],
    ['admin log, no filter', adminPages('limit=6')]
  ]
  for (const [name, read] of logs) {
    const before = extra
    const pages = await walk(read, sendMore)
    const all = pages.flat()
    // the first page may start with messages sent by the walks before this one
    const start = all.indexOf(newestFirst[0])
    assert.ok(start >= 0 && start <= before, `${name}: starts with the newest messages (${start})`)
    assert.deepEqual(all.slice(start, start + N), newestFirst, `${name}: the batch, last accepted first`)
    assert.equal(new Set(all).size, all.length, `${name}: no row twice`)
  }
})
