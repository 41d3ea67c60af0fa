// The device channel's rules (server/delivery/engine.ts), checked packet by packet: Herald as
// createHerald builds it, on a real Postgres, with devices speaking raw MQTT over an in-memory
// duplexPair (test/helpers/memoryBroker.ts). End-to-end tests over WebSocket see these rules only
// through an mqtt.js client that acknowledges everything at once; here the test decides when each
// PUBACK goes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { IPublishPacket } from 'mqtt-packet'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { waitUntil } from './helpers/delivery.js'
import { pushOf, startMemoryHerald, type MemoryDevice, type MemoryHerald } from './helpers/memoryBroker.js'

let db: TestDatabase
const running: MemoryHerald[] = []
before(async () => { db = await createTestDatabase() })
after(async () => {
  for (const h of running) await h.stop()
  await db.drop()
})

/** A Herald whose device connections have this in-flight window (MAX_INFLIGHT_PER_DEVICE). */
async function herald (maxInflight: number): Promise<MemoryHerald> {
  const h = await startMemoryHerald(db, { MAX_INFLIGHT_PER_DEVICE: String(maxInflight) })
  running.push(h)
  return h
}

const ids = (publishes: IPublishPacket[]): string[] => publishes.map(p => pushOf(p).id)

/** A persistent session that exists but is offline: messages for its user are queued for it. */
async function offline (h: MemoryHerald, user: string, clientId: string): Promise<void> {
  await (await h.connect(user, clientId)).drop()
}

/**
 * Resolves once the engine has done everything it had started: a push to another device, sent
 * now, has arrived. Its accept commits after, and its claim goes in the same or a later claim
 * batch than, any claim a channel started before (the engine claims in one batch at a time and
 * writes in claim order), so a PUBLISH that was coming to anyone has been written by then.
 */
async function quiet (h: MemoryHerald, marker: MemoryDevice, markerUser: string): Promise<void> {
  const before = marker.publishes.length
  await h.send(markerUser)
  await marker.waitForPublishes(before + 1)
  // written to the pair's other end means read on ours after this turn
  await new Promise(resolve => setImmediate(resolve))
}

/** Waits until GET /v1/messages/{id} shows `expected` for `deviceId` (delivered is written up to 20 ms late). */
async function statusesBecome (h: MemoryHerald, messageIds: string[], deviceId: string, expected: string[])
  : Promise<void> {
  let now: string[] = []
  await waitUntil(`statuses ${expected.join(', ')} on ${deviceId}`, async () => {
    now = await h.statuses(messageIds, deviceId)
    return now.every((status, i) => status === expected[i])
  }, 5_000).catch(() => {})
  assert.deepEqual(now, expected)
}

test('never more than maxInflight unacknowledged; each PUBACK lets exactly the next out, in accept order', async () => {
  const h = await herald(3)
  const marker = await h.connect('window-marker', 'window-marker-1')
  marker.ackEverything()
  await offline(h, 'window', 'window-1')
  const queued = await h.sendBatch('window', 10, i => ({ title: `m${i}` }))

  const device = await h.connect('window', 'window-1')
  await device.waitForPublishes(3)
  await quiet(h, marker, 'window-marker')
  assert.equal(device.publishes.length, 3, 'a full window and nothing beyond it')

  for (let next = 3; next < 10; next++) {
    device.puback(device.publishes[next - 3])
    await device.waitForPublishes(next + 1)
    await quiet(h, marker, 'window-marker')
    assert.equal(device.publishes.length, next + 1, `one PUBACK, one more PUBLISH (PUBACK ${next - 2})`)
  }
  assert.deepEqual(ids(device.publishes), queued, 'in accept order')
  assert.equal(new Set(device.publishes.map(p => p.messageId)).size, 10,
    'message ids of unacknowledged PUBLISHes never clash (here: none reused while in flight)')
})

test('a backlog of several pages arrives whole, in order, once; sends during it come after it', async () => {
  const h = await herald(100)
  await offline(h, 'backlog', 'backlog-1')
  // 1,250 queued: the first page (100), a full page (1,000) and a short one
  const expected = [
    ...await h.sendBatch('backlog', 500, i => ({ title: `a${i}` })),
    ...await h.sendBatch('backlog', 500, i => ({ title: `b${i}` })),
    ...await h.sendBatch('backlog', 250, i => ({ title: `c${i}` }))
  ]

  const device = await h.connect('backlog', 'backlog-1')
  await device.waitForPublishes(100)
  // the window is full and most of the backlog is still in Postgres: these are committed behind it
  // and must not overtake it, nor be lost, nor come twice (offered live, then read with a page)
  for (let i = 0; i < 20; i++) expected.push(await h.send('backlog', { title: `live${i}` }))
  device.ackEverything()
  await device.waitForPublishes(700)
  // and while the last page is read or drained
  for (let i = 0; i < 10; i++) expected.push(await h.send('backlog', { title: `late${i}` }))

  await device.waitForPublishes(expected.length)
  const got = ids(device.publishes)
  assert.equal(new Set(got).size, got.length, 'no message twice')
  assert.deepEqual(got, expected)
  await statusesBecome(h, [expected[0], expected[1100], expected.at(-1)!], 'backlog-1', Array(3).fill('delivered'))
})

test('unacknowledged PUBLISHes come first on the next connection, in order; acknowledged ones never', async () => {
  const h = await herald(3)
  await offline(h, 'resend', 'resend-1')
  const queued = await h.sendBatch('resend', 6)

  const first = await h.connect('resend', 'resend-1')
  await first.waitForPublishes(3)
  first.puback(first.publishes[0])
  // `delivered` is written up to 20 ms after the PUBACK; a reconnect within that gets it again,
  // as at-least-once allows: the rule is about an acknowledgement that is recorded
  await statusesBecome(h, [queued[0]], 'resend-1', ['delivered'])
  await first.drop()

  const second = await h.connect('resend', 'resend-1')
  second.ackEverything()
  await second.waitForPublishes(5)
  assert.deepEqual(ids(second.publishes), queued.slice(1), 'the two written before, then the rest')
  await statusesBecome(h, queued, 'resend-1', Array(6).fill('delivered'))
})

// MQTT 3.1.1 [MQTT-3.3.1-1]: "The DUP flag MUST be set to 1 by the Client or Server when it attempts
// to re-deliver a PUBLISH Packet". The claim knows (firstSent false).
test('a re-sent PUBLISH carries DUP = 1, a first one DUP = 0', async () => {
  const h = await herald(2)
  await offline(h, 'dup', 'dup-1')
  await h.sendBatch('dup', 3)
  const first = await h.connect('dup', 'dup-1')
  await first.waitForPublishes(2)
  assert.deepEqual(first.publishes.map(p => p.dup), [false, false])
  await first.drop()

  const second = await h.connect('dup', 'dup-1')
  second.ackEverything()
  await second.waitForPublishes(3)
  assert.deepEqual(second.publishes.map(p => p.dup), [true, true, false])
})

test('replaced or revoked while waiting in the channel\'s memory: never written', async () => {
  const h = await herald(1)
  await offline(h, 'claim', 'claim-1')
  const [a, b, c] = await h.sendBatch('claim', 3, i => ({ title: `m${i}`, collapseKey: i === 1 ? 'score' : null }))

  const device = await h.connect('claim', 'claim-1')
  await device.waitForPublishes(1)
  assert.deepEqual(ids(device.publishes), [a])
  // b and c were read with the first page and wait behind a's PUBACK: the row changes under them
  const newer = await h.send('claim', { title: 'newer score', collapseKey: 'score' })
  assert.deepEqual((await h.api(`/v1/messages/${c}`, { method: 'DELETE' })).body, { id: c, revoked: 1 })

  device.ackEverything()
  const end = await h.send('claim', { title: 'end' })
  await device.waitForPublishes(3)
  assert.deepEqual(ids(device.publishes), [a, newer, end])
  await statusesBecome(h, [a, b, c, newer, end], 'claim-1',
    ['delivered', 'replaced', 'revoked', 'delivered', 'delivered'])
})

test('replaced or revoked before the device connects: never written', async () => {
  const h = await herald(10)
  await offline(h, 'queue', 'queue-1')
  const [a, b] = await h.sendBatch('queue', 2, i => ({ collapseKey: i === 0 ? 'score' : null }))
  const newer = await h.send('queue', { collapseKey: 'score' })
  assert.equal((await h.api(`/v1/messages/${b}`, { method: 'DELETE' })).status, 200)
  const end = await h.send('queue')

  const device = await h.connect('queue', 'queue-1')
  device.ackEverything()
  await device.waitForPublishes(2)
  assert.deepEqual(ids(device.publishes), [newer, end])
  assert.deepEqual(await h.statuses([a, b], 'queue-1'), ['replaced', 'revoked'])
})

test('expired while waiting (in the channel or in Postgres): never written, recorded expired', async () => {
  const h = await herald(1)
  await offline(h, 'ttl', 'ttl-away')
  const online = await h.connect('ttl', 'ttl-here')
  const a = await h.send('ttl')
  await online.waitForPublishes(1)
  // behind a's PUBACK on the online device, queued for the offline one
  const short = await h.send('ttl', { ttl: 1 })
  const { expiresAt } = (await h.api(`/v1/messages/${short}`)).body
  // the one wait on a clock: a TTL ends with time, not with an event
  await new Promise(resolve => setTimeout(resolve, Date.parse(expiresAt) - Date.now() + 50))
  const c = await h.send('ttl')

  online.ackEverything()
  await online.waitForPublishes(2)
  assert.deepEqual(ids(online.publishes), [a, c])
  const away = await h.connect('ttl', 'ttl-away')
  away.ackEverything()
  await away.waitForPublishes(2)
  assert.deepEqual(ids(away.publishes), [a, c])
  assert.deepEqual(await h.statuses([short], 'ttl-here'), ['expired'])
  assert.deepEqual(await h.statuses([short], 'ttl-away'), ['expired'])
  // the API reads any row past its TTL as expired; the row itself says the channel skipped it
  // (rather than the sweep, 30 s later)
  await waitUntil('the channel to record the expiry', async () => {
    const { rows } = await db.pool.query(
      'select status, reason from deliveries where message_id = $1 and device_id = $2', [short, 'ttl-here'])
    return rows[0].status === 'expired' && rows[0].reason === 'ttl-ended'
  })
})
