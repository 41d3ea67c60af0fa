// Webhooks with real server processes (issue 11, part 3): a SIGKILL of the server while events
// are on their way loses none, and what arrives twice arrives with the same webhook-id; with two
// processes on one database each event is sent by one of them, once.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN_PASSWORD, connectDevice, type TestDevice } from './helpers/herald.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { killAllServers, serverEnv, spawnServer, type ServerProcess } from './helpers/process.js'
import { startWebhookReceiver, type ReceivedEvent, type WebhookReceiver } from './helpers/webhookReceiver.js'

const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }
const databases: TestDatabase[] = []
const devices: TestDevice[] = []
const receivers: WebhookReceiver[] = []

after(async () => {
  for (const d of devices) d.client.end(true)
  await killAllServers()
  for (const r of receivers) await r.close()
  await Promise.all(databases.map(db => db.drop()))
})

async function setUp (): Promise<{ db: TestDatabase, receiver: WebhookReceiver }> {
  const db = await createTestDatabase()
  databases.push(db)
  const receiver = await startWebhookReceiver()
  receivers.push(receiver)
  return { db, receiver }
}

async function register (server: ServerProcess, receiver: WebhookReceiver): Promise<void> {
  const created = await server.api('/v1/webhooks', {
    body: { url: receiver.url, events: ['message.delivered'] }, headers: ADMIN
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  receiver.secret = created.body.secret
}

async function inbox (server: ServerProcess, clientId: string, user: string): Promise<TestDevice> {
  const d = await connectDevice(server.wsUrl, { clientId, password: await server.token(user), clean: false })
  devices.push(d)
  await d.client.subscribeAsync(`users/${user}/inbox`, { qos: 1 })
  return d
}

/** Sends `count` messages to `user` in batches of 50; their ids in order. */
async function sendMany (server: ServerProcess, user: string, count: number, tag: string): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i += 50) {
    const messages = Array.from({ length: Math.min(50, count - i) },
      (_, k) => ({ to: { user }, title: `${tag} ${i + k}` }))
    const res = await server.api('/v1/messages/batch', { body: { messages } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    ids.push(...res.body.messages.map((r: { id: string }) => r.id))
  }
  return ids
}

const deliveredIds = (events: ReceivedEvent[]): Set<string> =>
  new Set(events.filter(e => e.type === 'message.delivered').map(e => e.data.messageId!))

test('SIGKILL while events are on their way: none is lost; a repeat carries the same webhook-id', async () => {
  const { db, receiver } = await setUp()
  // a receiver that takes a moment, so that POSTs are in flight when the server dies
  receiver.answer = (_req, res) => { setTimeout(() => res.writeHead(204).end(), 30) }
  const first = await spawnServer({ env: serverEnv(db.url) })
  await register(first, receiver)
  const phone = await inbox(first, 'crash-phone', 'crash-user')
  const ids = await sendMany(first, 'crash-user', 400, 'before')
  await receiver.until('the first events', events => events.length > 0)
  await first.kill9()
  const beforeKill = deliveredIds(receiver.events).size
  assert.ok(beforeKill < ids.length, `killed mid-stream: ${beforeKill} of ${ids.length} events had arrived`)
  phone.client.end(true)

  const second = await spawnServer({ env: serverEnv(db.url) })
  const back = await inbox(second, 'crash-phone', 'crash-user')
  ids.push(...await sendMany(second, 'crash-user', 100, 'after'))
  await back.waitFor(1)
  const events = await receiver.until('a delivered event for every message',
    got => ids.every(id => deliveredIds(got).has(id)), 30_000)

  // Postgres says each one was delivered, and each event arrived at least once
  const { rows } = await db.pool.query<{ n: number }>(
    "select count(*)::int as n from deliveries where status = 'delivered'")
  assert.equal(rows[0].n, ids.length)
  const webhookIdsOf = new Map<string, Set<string>>()
  for (const e of events) {
    const seen = webhookIdsOf.get(e.id) ?? new Set<string>()
    seen.add(e.webhookId)
    webhookIdsOf.set(e.id, seen)
  }
  for (const [eventId, webhookIds] of webhookIdsOf) {
    assert.equal(webhookIds.size, 1, `${eventId} came in POSTs with different webhook-ids: ${[...webhookIds]}`)
  }
  assert.ok(receiver.posts.every(p => p.verified))
  // the messages before the kill were delivered then or redelivered after: one event per delivery
  assert.equal(new Set(events.map(e => e.data.messageId)).size, ids.length)
})

test('two processes on one database: each event is sent once, by one of them', async () => {
  const { db, receiver } = await setUp()
  const a = await spawnServer({ env: serverEnv(db.url) })
  const b = await spawnServer({ env: serverEnv(db.url) })
  await register(a, receiver)
  const onA = await inbox(a, 'pair-a', 'pair-user-a')
  const onB = await inbox(b, 'pair-b', 'pair-user-b')
  const ids = [
    ...await sendMany(b, 'pair-user-a', 150, 'a'),
    ...await sendMany(a, 'pair-user-b', 150, 'b')
  ]
  await Promise.all([onA.waitFor(150), onB.waitFor(150)])
  const events = await receiver.until('every delivery', got => ids.every(id => deliveredIds(got).has(id)))
  assert.equal(events.length, ids.length, 'no event twice')
  assert.deepEqual(new Set(events.map(e => e.data.deviceId)), new Set(['pair-a', 'pair-b']))
})
