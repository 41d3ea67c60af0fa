// A message's life after the 202: expiry, ttl 0, collapse, idempotent retries, revoke, receipts,
// and the device registry (list, end a session). Asserted the way a user sees it: what devices
// receive and what GET /v1/messages/{id} and GET /v1/users/{user}/devices report.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, type TestHerald, type TestDevice } from './helpers/herald.js'
import {
  deliveryOf, device, getMessage, ids, listDevices, offlineDevice, reconnect, send, waitForStatus, waitOffline,
  waitUntil
} from './helpers/delivery.js'
import { expireDue } from '../server/store/deliveries.js'

let h: TestHerald
const open: TestDevice[] = []
before(async () => { h = await startTestHerald() })
after(async () => {
  await Promise.all(open.map(d => d.close()))
  await h.stop()
})

async function tracked (d: Promise<TestDevice>): Promise<TestDevice> {
  const dev = await d
  open.push(dev)
  return dev
}

test('ttl expiry: a message that expired while the device was away is not delivered on reconnect', async () => {
  await offlineDevice(h, 'ann', 'ann-phone')
  const short = await send(h, { to: { user: 'ann' }, title: 'short-lived', ttl: 1 })
  assert.equal(short.recipients, 1)
  const message = await getMessage(h, short.id)
  assert.equal(message.ttl, 1)
  assert.equal(Date.parse(message.expiresAt) - Date.parse(message.sentAt), 1000)
  assert.equal(message.deliveries[0].status, 'queued')
  const kept = await send(h, { to: { user: 'ann' }, title: 'long-lived' })

  // expiry is time: wait for the clock to pass expiresAt
  const expiresAt = Date.parse(message.expiresAt)
  await new Promise(resolve => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 50))
  const [annDevice] = await listDevices(h, 'ann')
  assert.equal(annDevice.pending, 1, 'the expired message no longer counts as pending')

  const phone = await tracked(reconnect(h, 'ann', 'ann-phone'))
  await phone.waitFor(1)
  const marker = await send(h, { to: { user: 'ann' }, title: 'marker' })
  await phone.waitFor(2)
  assert.deepEqual(ids(phone), [kept.id, marker.id], 'the expired message never arrives')

  const after = await deliveryOf(h, short.id, 'ann-phone')
  assert.notEqual(after.status, 'delivered')
  assert.notEqual(after.status, 'sent')
  assert.equal(after.sentAt, null)
  assert.equal(after.deliveredAt, null)
  // The sweeper records `expired` 30 s after expiresAt (every 5 s); run its query without the grace
  // instead of waiting 35 s here.
  await waitForStatus(h, kept.id, 'ann-phone', 'delivered')
  await expireDue(h.db.pool, 0, 1000)
  assert.equal((await deliveryOf(h, short.id, 'ann-phone')).status, 'expired')
  assert.equal((await deliveryOf(h, kept.id, 'ann-phone')).status, 'delivered', 'the sweep leaves live messages alone')
  await phone.close()
})

test('ttl 0: an online device gets it, an offline persistent device never does', async () => {
  const phone = await tracked(device(h, 'ben', 'ben-phone'))
  await offlineDevice(h, 'ben', 'ben-tablet')
  const now = await send(h, { to: { user: 'ben' }, title: 'now or never', ttl: 0 })
  assert.equal(now.recipients, 1, 'only the online device counts')
  const [msg] = await phone.waitFor(1)
  assert.equal(msg.payload.id, now.id)
  assert.equal(msg.payload.expiresAt, msg.payload.sentAt)
  await waitForStatus(h, now.id, 'ben-phone', 'delivered')
  assert.deepEqual((await getMessage(h, now.id)).deliveries.map((d: any) => d.deviceId), ['ben-phone'])

  const tablet = await tracked(reconnect(h, 'ben', 'ben-tablet'))
  const marker = await send(h, { to: { user: 'ben' }, title: 'marker' })
  await tablet.waitFor(1)
  assert.deepEqual(ids(tablet), [marker.id])
  await Promise.all([phone.close(), tablet.close()])
})

test('ttl 0 to a topic reaches online subscribers only', async () => {
  const online = await tracked(device(h, 'cleo', 'cleo-phone', { topics: ['topics/flash'] }))
  await offlineDevice(h, 'dave', 'dave-phone', ['topics/flash'])
  const flash = await send(h, { to: { topic: 'flash' }, title: 'flash sale', ttl: 0 })
  assert.equal(flash.recipients, 1)
  const [msg] = await online.waitFor(1)
  assert.equal(msg.payload.id, flash.id)
  assert.equal(msg.payload.topic, 'flash')
  const dave = await tracked(reconnect(h, 'dave', 'dave-phone'))
  const marker = await send(h, { to: { user: 'dave' }, title: 'marker' })
  await dave.waitFor(1)
  assert.deepEqual(ids(dave), [marker.id])
  await Promise.all([online.close(), dave.close()])
})

test('collapse: of 3 queued messages with one collapseKey only the newest arrives, ' +
  'the older are replaced', async () => {
  await offlineDevice(h, 'dora', 'dora-phone')
  const c1 = await send(h, { to: { user: 'dora' }, title: 'score 1-0', collapseKey: 'score' })
  const other = await send(h, { to: { user: 'dora' }, title: 'unrelated' })
  const c2 = await send(h, { to: { user: 'dora' }, title: 'score 2-0', collapseKey: 'score' })
  const c3 = await send(h, { to: { user: 'dora' }, title: 'score 2-1', collapseKey: 'score' })
  assert.equal((await deliveryOf(h, c1.id, 'dora-phone')).status, 'replaced')
  assert.equal((await deliveryOf(h, c2.id, 'dora-phone')).status, 'replaced')
  assert.equal((await deliveryOf(h, c3.id, 'dora-phone')).status, 'queued')
  assert.equal((await listDevices(h, 'dora'))[0].pending, 2)

  const phone = await tracked(reconnect(h, 'dora', 'dora-phone'))
  await phone.waitFor(2)
  const marker = await send(h, { to: { user: 'dora' }, title: 'marker' })
  await phone.waitFor(3)
  assert.deepEqual(ids(phone), [other.id, c3.id, marker.id],
    'the unrelated message keeps its place; only the newest score arrives')
  assert.equal(phone.received[1].payload.title, 'score 2-1')
  assert.equal(phone.received[1].payload.collapseKey, 'score')
  await waitForStatus(h, c3.id, 'dora-phone', 'delivered')
  assert.equal((await deliveryOf(h, c1.id, 'dora-phone')).status, 'replaced')
  assert.equal((await deliveryOf(h, c2.id, 'dora-phone')).status, 'replaced')
  assert.equal((await deliveryOf(h, other.id, 'dora-phone')).status, 'delivered')

  // a delivered message is not replaced by a newer one with its key: that one just arrives too
  const c4 = await send(h, { to: { user: 'dora' }, title: 'score 3-1', collapseKey: 'score' })
  await phone.waitFor(4)
  assert.equal(phone.received[3].payload.id, c4.id)
  assert.equal((await deliveryOf(h, c3.id, 'dora-phone')).status, 'delivered')
  await phone.close()
})

test('a batch to an offline device arrives in array order on reconnect, ' +
  'with collapse applied inside the batch', async () => {
  await offlineDevice(h, 'bea', 'bea-phone')
  const res = await h.api('/v1/messages/batch', {
    body: {
      messages: [
        { to: { user: 'bea' }, title: 'first' },
        { to: { user: 'bea' }, title: 'score 1-0', collapseKey: 'score' },
        { to: { user: 'bea' }, title: 'second' },
        { to: { user: 'bea' }, title: 'score 2-0', collapseKey: 'score' }
      ]
    }
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  const [first, score1, second, score2] = res.body.messages.map((m: { id: string }) => m.id)
  assert.equal((await deliveryOf(h, score1, 'bea-phone')).status, 'replaced',
    'a later item of the batch replaces an earlier one with its key')
  const phone = await tracked(reconnect(h, 'bea', 'bea-phone'))
  await phone.waitFor(3)
  const marker = await send(h, { to: { user: 'bea' }, title: 'marker' })
  await phone.waitFor(4)
  assert.deepEqual(ids(phone), [first, second, score2, marker.id])
  await waitForStatus(h, score2, 'bea-phone', 'delivered')
  await phone.close()
})

test('idempotency: a repeat returns the first answer and the device gets the message once', async () => {
  const phone = await tracked(device(h, 'eli', 'eli-phone'))
  const body = { to: { user: 'eli' }, title: 'once', data: { n: 1 } }
  const headers = { 'idempotency-key': 'order-1001-shipped' }
  const first = await h.api('/v1/messages', { body, headers })
  assert.equal(first.status, 202)
  assert.equal(first.body.recipients, 1)
  const again = await h.api('/v1/messages', { body, headers })
  assert.equal(again.status, 202)
  assert.deepEqual(again.body, first.body)

  // two retries racing each other get one answer too
  const raced = await Promise.all([1, 2].map(() =>
    h.api('/v1/messages', { body: { ...body, title: 'raced' }, headers: { 'idempotency-key': 'raced-key' } })))
  assert.deepEqual(raced.map(r => r.status), [202, 202])
  assert.deepEqual(raced[0].body, raced[1].body)

  const conflict = await h.api('/v1/messages', { body: { ...body, title: 'something else' }, headers })
  assert.equal(conflict.status, 422)
  assert.match(conflict.headers.get('content-type') ?? '', /^application\/problem\+json/)
  assert.equal(conflict.body.code, 'idempotency-key-reused')
  assert.equal(conflict.body.status, 422)
  assert.match(conflict.body.type, /idempotency-key-reused$/)

  const marker = await send(h, { to: { user: 'eli' }, title: 'marker' })
  await phone.waitFor(3)
  assert.deepEqual(ids(phone), [first.body.id, raced[0].body.id, marker.id],
    'each message once, nothing for the conflict')

  // after 24 hours the key is free again, even before the sweep (every 10 minutes) removes it
  await h.db.pool.query("update idempotency_keys set created_at = now() - interval '25 hours' where key = $1",
    [headers['idempotency-key']])
  const reused = await h.api('/v1/messages', { body: { ...body, title: 'a day later' }, headers })
  assert.equal(reused.status, 202, JSON.stringify(reused.body))
  assert.notEqual(reused.body.id, first.body.id)
  const reusedAgain = await h.api('/v1/messages', { body: { ...body, title: 'a day later' }, headers })
  assert.deepEqual(reusedAgain.body, reused.body, 'the new use of the key answers repeats from now on')
  await phone.waitFor(4)
  assert.equal(phone.received[3].payload.id, reused.body.id)
  await phone.close()
})

test('revoke: a message revoked before the device reconnects is never delivered and shows revoked', async () => {
  await offlineDevice(h, 'fay', 'fay-phone')
  const oops = await send(h, { to: { user: 'fay' }, title: 'sent by mistake' })
  const fine = await send(h, { to: { user: 'fay' }, title: 'fine' })
  const res = await h.api(`/v1/messages/${oops.id}`, { method: 'DELETE' })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.deepEqual(res.body, { id: oops.id, revoked: 1 })
  const revoked = await getMessage(h, oops.id)
  assert.equal(revoked.deliveries[0].status, 'revoked')
  assert.ok(revoked.revokedAt, 'revokedAt is set')

  const phone = await tracked(reconnect(h, 'fay', 'fay-phone'))
  await phone.waitFor(1)
  const marker = await send(h, { to: { user: 'fay' }, title: 'marker' })
  await phone.waitFor(2)
  assert.deepEqual(ids(phone), [fine.id, marker.id])
  assert.equal((await deliveryOf(h, oops.id, 'fay-phone')).status, 'revoked')

  // revoking what was delivered changes nothing for that device
  await waitForStatus(h, marker.id, 'fay-phone', 'delivered')
  const late = await h.api(`/v1/messages/${marker.id}`, { method: 'DELETE' })
  assert.deepEqual(late.body, { id: marker.id, revoked: 0 })
  assert.equal((await deliveryOf(h, marker.id, 'fay-phone')).status, 'delivered')

  const missing = await h.api('/v1/messages/00000000-0000-4000-8000-000000000000', { method: 'DELETE' })
  assert.equal(missing.status, 404)
  assert.equal(missing.body.code, 'not-found')
  await phone.close()
})

test('receipts: displayed then opened, published by the device, show in GET /v1/messages/{id}', async () => {
  const phone = await tracked(device(h, 'gus', 'gus-phone'))
  const sent = await send(h, { to: { user: 'gus' }, title: 'read me' })
  await phone.waitFor(1)
  await waitForStatus(h, sent.id, 'gus-phone', 'delivered')
  assert.equal((await deliveryOf(h, sent.id, 'gus-phone')).displayedAt, null)

  // the PUBACK comes once the receipt is recorded
  await phone.client.publishAsync('users/gus/receipts', JSON.stringify({ id: sent.id, event: 'displayed' }), { qos: 1 })
  const displayed = await deliveryOf(h, sent.id, 'gus-phone')
  assert.ok(displayed.displayedAt, JSON.stringify(displayed))
  assert.equal(displayed.openedAt, null)
  assert.equal(displayed.status, 'delivered')

  await phone.client.publishAsync('users/gus/receipts', JSON.stringify({ id: sent.id, event: 'opened' }), { qos: 1 })
  const opened = await deliveryOf(h, sent.id, 'gus-phone')
  assert.ok(opened.openedAt)
  assert.equal(opened.displayedAt, displayed.displayedAt, 'a later receipt keeps the earlier time')
  assert.ok(Date.parse(opened.openedAt) >= Date.parse(opened.displayedAt))
  await phone.client.publishAsync('users/gus/receipts', JSON.stringify({ id: sent.id, event: 'dismissed' }), { qos: 1 })
  const dismissed = await deliveryOf(h, sent.id, 'gus-phone')
  assert.ok(dismissed.dismissedAt)
  assert.equal(dismissed.openedAt, opened.openedAt)
  assert.ok(phone.client.connected, 'receipts do not cost the device its connection')
  await phone.close()
})

test('GET /v1/users/{user}/devices shows which devices are online and how much each has pending', async () => {
  const phone = await tracked(device(h, 'hal', 'hal-phone'))
  await offlineDevice(h, 'hal', 'hal-tablet')
  const m1 = await send(h, { to: { user: 'hal' }, title: 'one' })
  await send(h, { to: { user: 'hal' }, title: 'two' })
  await phone.waitFor(2)
  await waitForStatus(h, m1.id, 'hal-phone', 'delivered')
  const list = await waitUntil('hal-phone to have nothing pending', async () => {
    const devices = await listDevices(h, 'hal')
    return devices.find(d => d.deviceId === 'hal-phone')?.pending === 0 ? devices : undefined
  })
  const byId = Object.fromEntries(list.map(d => [d.deviceId, d]))
  assert.deepEqual(Object.keys(byId).sort(), ['hal-phone', 'hal-tablet'])
  assert.equal(byId['hal-phone'].online, true)
  assert.equal(byId['hal-phone'].pending, 0)
  assert.ok(byId['hal-phone'].connectedAt)
  assert.equal(byId['hal-tablet'].online, false)
  assert.equal(byId['hal-tablet'].pending, 2)
  assert.ok(byId['hal-tablet'].lastSeenAt)
  for (const d of list) {
    for (const key of ['deviceId', 'online', 'connectedAt', 'lastSeenAt', 'pending']) {
      assert.ok(key in d, `${key} in ${JSON.stringify(d)}`)
    }
  }
  assert.deepEqual(await listDevices(h, 'no-such-user'), [])
  await phone.close()
})

test('DELETE /v1/devices/{id} disconnects the device and revokes its queue', async () => {
  // an offline persistent device with a queue and a topic subscription
  await offlineDevice(h, 'ivy', 'ivy-tablet', ['topics/ivy-news'])
  const q1 = await send(h, { to: { user: 'ivy' }, title: 'q1' })
  const q2 = await send(h, { to: { user: 'ivy' }, title: 'q2' })
  const ended = await h.api('/v1/devices/ivy-tablet', { method: 'DELETE' })
  assert.equal(ended.status, 200, JSON.stringify(ended.body))
  assert.equal(ended.body.revoked, 2)
  assert.equal(ended.body.disconnected, false)
  assert.equal((await deliveryOf(h, q1.id, 'ivy-tablet')).status, 'revoked')
  assert.equal((await deliveryOf(h, q2.id, 'ivy-tablet')).status, 'revoked')
  const whileEnded = await send(h, { to: { user: 'ivy' }, title: 'after the session ended' })
  assert.equal(whileEnded.recipients, 0, 'an ended session is no longer a target')
  assert.equal((await send(h, { to: { topic: 'ivy-news' }, title: 'news' })).recipients, 0)

  // an online device is disconnected
  const phone = await tracked(device(h, 'ivy', 'ivy-phone'))
  const closed = new Promise<void>(resolve => phone.client.once('close', () => resolve()))
  const kicked = await h.api('/v1/devices/ivy-phone', { method: 'DELETE' })
  assert.equal(kicked.status, 200)
  assert.equal(kicked.body.disconnected, true)
  await closed
  await waitOffline(h, 'ivy', 'ivy-phone')

  // the tablet comes back with a new session: nothing of the old queue arrives, and the old
  // session's subscriptions are gone with it
  const tablet = await tracked(reconnect(h, 'ivy', 'ivy-tablet'))
  const news = await send(h, { to: { topic: 'ivy-news' }, title: 'news for the old session' })
  assert.equal(news.recipients, 0, 'the ended session\'s topic subscription does not come back')
  const marker = await send(h, { to: { user: 'ivy' }, title: 'marker' })
  await tablet.waitFor(1)
  assert.deepEqual(ids(tablet), [marker.id])

  const missing = await h.api('/v1/devices/no-such-device', { method: 'DELETE' })
  assert.equal(missing.status, 404)
  assert.equal(missing.body.code, 'not-found')
  await tablet.close()
})
