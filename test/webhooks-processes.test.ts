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
  // sends go on until the server dies: deliveries, and so events, are still being made when it does
  const ids: string[] = []
  let sending = true
  const sender = (async () => {
    for (;;) {
      const sent = await sendMany(first, 'crash-user', 20, 'before').catch(() => undefined)
      if (sent === undefined) return
      ids.push(...sent)
      if (!sending) return
    }
  })()
  await receiver.until('the first events', events => events.length > 0)
  await first.kill9()
  sending = false
  await sender
  phone.client.end(true)
  const beforeKill = receiver.events.length

  const second = await spawnServer({ env: serverEnv(db.url) })
  const back = await inbox(second, 'crash-phone', 'crash-user')
  ids.push(...await sendMany(second, 'crash-user', 100, 'after'))
  await back.waitFor(100)
  await receiver.until('an event for every message accepted', got => ids.every(id => deliveredIds(got).has(id)), 30_000)
  // a batch cut off by the kill may have committed without its 202: its messages count too
  const delivered = async (): Promise<string[]> => (await db.pool.query<{ id: string }>(
    "select message_id as id from deliveries where status = 'delivered'")).rows.map(r => r.id)
  const inPostgres = await delivered()
  const events = await receiver.until('an event for every delivery Postgres recorded',
    got => inPostgres.every(id => deliveredIds(got).has(id)))
  assert.ok(beforeKill < events.length, `killed mid-stream: ${beforeKill} events before, ${events.length} in all`)
  assert.deepEqual(new Set(events.map(e => e.data.messageId)), new Set(await delivered()),
    'one event per delivery, none for anything else')

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
