// The device SDK (sdk/js) in Node against a real Herald: delivery with the fields a device sees,
// receipts the server records, a device id kept across restarts, dedupe across an app restart,
// messages past their expiry, token renewal while messages stream, and refusals that stop.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHeraldClient, memoryStorage, type HeraldClient, type HeraldClientOptions } from '../sdk/js/src/index.js'
import { backoffDelay } from '../sdk/js/src/backoff.js'
import { JWT_SECRET, startTestHerald, type TestHerald } from './helpers/herald.js'
import { createTestDatabase } from './helpers/db.js'
import { waitOffline } from './helpers/delivery.js'
import { metricSample } from './helpers/metrics.js'
import {
  deliveryTo, holdableStorage, nextEvent, record, sendPush, signToken, tokenProvider, waitForDelivery
} from './helpers/sdk.js'

let h: TestHerald
const clients: HeraldClient[] = []
// retries come quickly here: the waits under test are the client's, not the defaults'
const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 }

const METRICS_TOKEN = 'metrics-token-for-sdk-tests'

before(async () => { h = await startTestHerald({ env: { METRICS_TOKEN } }) })
after(async () => {
  await Promise.all(clients.map(c => c.close()))
  await h?.stop()
})

function client (options: Partial<HeraldClientOptions> & Pick<HeraldClientOptions, 'token'>): HeraldClient {
  const c = createHeraldClient({ url: h.wsUrl, reconnect: FAST_RECONNECT, ...options })
  clients.push(c)
  return c
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('a push arrives once with every field; receipts reach the server; the device id survives a restart', async () => {
  const storage = memoryStorage()
  const tokens = tokenProvider(() => signToken('ada'))
  // an http URL means the server's /mqtt
  const first = client({ url: h.url, token: tokens.provide, storage, topics: ['news'] })
  const messages = record(first, 'message')
  await first.whenConnected()
  assert.equal(first.state, 'connected')
  const deviceId = first.deviceId!
  assert.match(deviceId, UUID)
  assert.equal(await storage.getItem('herald:device:ada'), deviceId, 'kept in storage, per user')

  const sent = await sendPush(h.api, {
    to: { user: 'ada' }, title: 'Shipped', body: 'On its way', data: { orderId: 7 }, priority: 'high', collapseKey: 'o7'
  })
  assert.equal(sent.recipients, 1)
  const news = await sendPush(h.api, { to: { topic: 'news' }, title: 'Extra' })
  await messages.waitFor(2)
  const [push, topical] = messages.list
  assert.equal(push!.id, sent.id)
  const { title, body, data, priority, collapseKey } = push!
  assert.deepEqual({ title, body, data, priority, collapseKey },
    { title: 'Shipped', body: 'On its way', data: { orderId: 7 }, priority: 'high', collapseKey: 'o7' })
  assert.ok(Date.parse(push!.expiresAt) > Date.parse(push!.sentAt))
  assert.equal(push!.topic, undefined)
  assert.deepEqual([topical!.id, topical!.topic, topical!.title], [news.id, 'news', 'Extra'])

  const receipts = record(first, 'receipt')
  await push!.displayed()
  await push!.opened()
  await receipts.waitFor(2)
  assert.deepEqual(receipts.list, [{ id: sent.id, event: 'displayed' }, { id: sent.id, event: 'opened' }])
  // the PUBACK came once the server committed it: the REST API shows it now
  const delivery = await deliveryTo(h.api, sent.id, deviceId)
  assert.equal(delivery.status, 'delivered')
  assert.ok(delivery.displayedAt && delivery.openedAt, JSON.stringify(delivery))
  assert.equal(delivery.dismissedAt, null)

  await first.close()
  assert.equal(first.state, 'closed')
  const again = client({ token: tokens.provide, storage })
  await again.whenConnected()
  assert.equal(again.deviceId, deviceId, 'the same device after a restart')
  const other = client({ token: async () => signToken('bob'), storage })
  await other.whenConnected()
  assert.notEqual(other.deviceId, deviceId, 'another user on this install is another device')
})

test('a message handed over before the app closed is not handed over again after a restart', async () => {
  const held = holdableStorage()
  const token = async (): Promise<string> => signToken('cy')
  const before = client({ token, storage: held.storage })
  const beforeMessages = record(before, 'message')
  await before.whenConnected()
  const deviceId = before.deviceId!

  // the app gets the message, but its id is still being written when the app closes: no PUBACK
  held.hold('herald:seen:')
  const m1 = await sendPush(h.api, { to: { user: 'cy' }, title: 'once' })
  await beforeMessages.waitFor(1)
  // close() disconnects, then waits for the held write: released once the server saw the device go
  const closed = before.close()
  await waitOffline(h, 'cy', deviceId)
  held.release()
  await closed
  assert.equal((await deliveryTo(h.api, m1.id, deviceId)).status, 'sent', 'written, never acknowledged')

  const after = client({ token, storage: held.storage })
  const afterMessages = record(after, 'message')
  await after.whenConnected()
  // the server sends m1 again; this time it is acknowledged without being handed over
  await waitForDelivery(h.api, m1.id, deviceId, d => d.status === 'delivered', 'acknowledged after the restart')
  const m2 = await sendPush(h.api, { to: { user: 'cy' }, title: 'next' })
  await afterMessages.waitFor(1)
  assert.deepEqual(afterMessages.list.map(m => m.id), [m2.id], 'm1 not handed over twice')
  assert.deepEqual(beforeMessages.list.map(m => m.id), [m1.id])
})

test('a message arriving after its expiresAt (by a clock ahead) is acknowledged and reported as expired', async () => {
  // this device's clock is two hours ahead of the server's: even its fresh token looks expired
  let issued = 0
  // each token differs (as real ones do, by their iat or jti): a client renewing in a loop would take each
  const token = async (): Promise<string> => signToken('dee', 3600 + issued++)
  const c = client({ token, now: () => Date.now() + 2 * 3600_000 })
  const states = record(c, 'state')
  const messages = record(c, 'message')
  const expired = record(c, 'expired')
  await c.whenConnected()
  const stale = await sendPush(h.api, { to: { user: 'dee' }, title: 'stale', ttl: 3600 })
  const fresh = await sendPush(h.api, { to: { user: 'dee' }, title: 'fresh', ttl: 3 * 3600 })
  await messages.waitFor(1)
  assert.deepEqual(messages.list.map(m => m.id), [fresh.id])
  assert.deepEqual(expired.list.map(m => [m.id, m.title]), [[stale.id, 'stale']])
  await waitForDelivery(h.api, stale.id, c.deviceId!, d => d.status === 'delivered', 'acknowledged all the same')
  // such a token is not "renewed" over and over: the connection stays until the server ends it
  assert.deepEqual(states.list, ['connected'])
})

test('the token is renewed before it expires while messages stream: none lost, none twice', async () => {
  const tokens = tokenProvider(() => signToken('eve', 3))
  const fetchedBeforeExpiry: boolean[] = []
  const provide = async (): Promise<string> => {
    const previous = tokens.issued.at(-1)
    const expiry = previous && (JSON.parse(atob(previous.split('.')[1]!)).exp as number) * 1000
    if (expiry) fetchedBeforeExpiry.push(Date.now() < expiry)
    return await tokens.provide()
  }
  const c = client({ token: provide })
  const states = record(c, 'state')
  const errors = record(c, 'error')
  const messages = record(c, 'message')
  await c.whenConnected()
  const sent: string[] = []
  // send without pause until the token has been renewed twice
  while (tokens.issued.length < 3) {
    sent.push((await sendPush(h.api, { to: { user: 'eve' }, body: `${sent.length}` })).id)
  }
  await c.whenConnected()
  sent.push((await sendPush(h.api, { to: { user: 'eve' }, body: 'last' })).id)
  await messages.waitFor(sent.length)
  assert.deepEqual(messages.list.map(m => m.id), sent, 'every message once, in order')
  assert.deepEqual(fetchedBeforeExpiry, [true, true], 'each new token fetched before the old one expired')
  assert.deepEqual(states.list, ['connected', 'connecting', 'connected', 'connecting', 'connected'])
  assert.deepEqual(errors.list, [])
})

test('a token the server refuses stops the client with token-refused; it does not retry', async () => {
  const tokens = tokenProvider(() => signToken('fay', 3600, 'not-the-server-secret-0123456789-0123456789'))
  const c = client({ token: tokens.provide })
  const errors = record(c, 'error')
  await assert.rejects(c.whenConnected(), { name: 'HeraldError', code: 'token-refused', fatal: true })
  assert.equal(c.state, 'refused')
  assert.equal(c.error?.code, 'token-refused')
  assert.deepEqual(errors.list.map(e => e.code), ['token-refused'])
  // nothing to wait for when nothing happens: ten retry delays pass without another attempt
  await new Promise(resolve => setTimeout(resolve, 10 * FAST_RECONNECT.initialDelayMs))
  assert.equal(tokens.issued.length, 1, 'the provider was asked once')
  const metrics = await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }))
    .text()
  assert.equal(metricSample(metrics, 'herald_device_auth_failures_total{reason="bad-signature"}'), 1)
})

test('a token the server accepted and now refuses (its signing key changed) is replaced by a fresh one', async () => {
  const db = await createTestDatabase()
  const first = await startTestHerald({ db })
  let secret = JWT_SECRET
  const tokens = tokenProvider(() => signToken('ivy', 3600, secret))
  const c = client({ url: first.wsUrl, token: tokens.provide })
  await c.whenConnected()
  const offline = nextEvent(c, 'state', state => state === 'offline')
  await first.stop()
  await offline
  // the same server address and database, a new key: the token held is refused
  secret = 'a-rotated-secret-that-is-long-enough-0123456789'
  const second = await startTestHerald({ db, env: { PORT: new URL(first.url).port, JWT_SECRET: secret } })
  try {
    await c.whenConnected()
    assert.equal(tokens.issued.length, 2, 'one fresh token after the refusal')
    const messages = record(c, 'message')
    const sent = await sendPush(second.api, { to: { user: 'ivy' }, title: 'after the rotation' })
    await messages.waitFor(1)
    assert.equal(messages.list[0]!.id, sent.id)
  } finally {
    await c.close()
    await second.stop()
    await db.drop()
  }
})

test('broadcast topics can be added and dropped while connected; a name the server refuses is an error', async () => {
  const c = client({ token: async () => signToken('joe') })
  await c.whenConnected()
  const messages = record(c, 'message')
  await c.subscribe('sports')
  const goal = await sendPush(h.api, { to: { topic: 'sports' }, title: 'goal' })
  assert.equal(goal.recipients, 1)
  await messages.waitFor(1)
  assert.deepEqual([messages.list[0]!.id, messages.list[0]!.topic], [goal.id, 'sports'])
  await c.unsubscribe('sports')
  assert.equal((await sendPush(h.api, { to: { topic: 'sports' }, title: 'half time' })).recipients, 0)
  await assert.rejects(c.subscribe('a/b'), { code: 'subscription-refused', message: /server refused/ })
  await assert.rejects(c.subscribe('a+b'), { code: 'subscription-refused' })

  // a refused name among the options' topics is reported; the others stand
  const other = client({ token: async () => signToken('joy'), topics: ['sports', 'no/slash'] })
  const [refused] = await nextEvent(other, 'error')
  assert.deepEqual([refused.code, refused.fatal], ['subscription-refused', false])
  assert.match(refused.message, /topics\/no\/slash/)
  assert.equal((await sendPush(h.api, { to: { topic: 'sports' }, title: 'full time' })).recipients, 1)
})

test('messages wait, unacknowledged, until the app listens', async () => {
  const c = client({ token: async () => signToken('kai') })
  await c.whenConnected()
  const sent = await sendPush(h.api, { to: { user: 'kai' }, title: 'early' })
  await waitForDelivery(h.api, sent.id, c.deviceId!, d => d.status === 'sent', 'written to the device')
  const got = nextEvent(c, 'message')
  const [message] = await got
  assert.equal(message.id, sent.id)
  await waitForDelivery(h.api, sent.id, c.deviceId!, d => d.status === 'delivered', 'acknowledged once handed over')
})

test('reconnection waits double from initialDelayMs up to maxDelayMs, each with a random half', () => {
  const options = { initialDelayMs: 1000, maxDelayMs: 8000 }
  const waits = (random: number): number[] => [0, 1, 2, 3, 4, 10].map(n => backoffDelay(n, options, () => random))
  assert.deepEqual(waits(0), [500, 1000, 2000, 4000, 4000, 4000])
  assert.deepEqual(waits(0.999999).map(Math.round), [1000, 2000, 4000, 8000, 8000, 8000])
})

test('a device id of another user stops the client with device-id-taken', async () => {
  const owner = client({ token: async () => signToken('gus'), deviceId: 'shared-tablet' })
  await owner.whenConnected()
  await owner.close()
  const intruder = client({ token: async () => signToken('hal'), deviceId: 'shared-tablet' })
  await assert.rejects(intruder.whenConnected(), { code: 'device-id-taken', fatal: true })
  assert.equal(intruder.state, 'refused')
})
