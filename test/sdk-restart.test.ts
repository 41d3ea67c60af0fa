// The device SDK (sdk/js) across a server crash: Herald is killed (SIGKILL to its process group)
// while the app holds a message it has not acknowledged yet, and receipts are made while the
// server is gone. A new process on the same address and database sends that message again; the
// client acknowledges it without handing it over twice, and the receipts arrive.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHeraldClient, type HeraldClient } from '../sdk/js/src/index.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { killAllServers, serverEnv, spawnServer } from './helpers/process.js'
import {
  deliveryTo, holdableStorage, nextEvent, record, sendPush, signToken, waitForDelivery
} from './helpers/sdk.js'

let db: TestDatabase | undefined
let client: HeraldClient | undefined
const held = holdableStorage()

after(async () => {
  held.release()
  await client?.close()
  await killAllServers()
  await db?.drop()
})

test('after kill -9 the message in flight comes again and is not handed over twice; ' +
  'receipts made while the server was down arrive', async () => {
  db = await createTestDatabase()
  const first = await spawnServer({ env: serverEnv(db.url) })
  client = createHeraldClient({
    url: first.wsUrl,
    token: async () => signToken('kim'),
    storage: held.storage,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400 }
  })
  const messages = record(client, 'message')
  await client.whenConnected()
  const deviceId = client.deviceId!

  const m1 = await sendPush(first.api, { to: { user: 'kim' }, title: 'first' })
  await messages.waitFor(1)
  await waitForDelivery(first.api, m1.id, deviceId, d => d.status === 'delivered', 'acknowledged')
  // the app has m2, but the client is still storing its id: no PUBACK yet when the server dies
  held.hold('herald:seen:')
  const m2 = await sendPush(first.api, { to: { user: 'kim' }, title: 'in flight' })
  await messages.waitFor(2)
  const offline = nextEvent(client, 'state', state => state === 'offline')
  assert.equal((await first.kill9()).signal, 'SIGKILL')
  await offline
  held.release()

  // the user reads m1 while the server is gone: kept, and sent once it is back
  const receipts = record(client, 'receipt')
  await messages.list[0]!.displayed()
  await messages.list[0]!.opened()
  assert.equal(client.state, 'offline')

  const second = await spawnServer({ env: serverEnv(db.url, { PORT: new URL(first.url).port }) })
  await client.whenConnected()
  await receipts.waitFor(2)
  const m1Delivery = await deliveryTo(second.api, m1.id, deviceId)
  assert.ok(m1Delivery.displayedAt && m1Delivery.openedAt, JSON.stringify(m1Delivery))
  // m2 came again on the new connection: acknowledged this time, not handed over again
  await waitForDelivery(second.api, m2.id, deviceId, d => d.status === 'delivered', 'acknowledged after the crash')
  const m3 = await sendPush(second.api, { to: { user: 'kim' }, title: 'after' })
  await messages.waitFor(3)
  assert.deepEqual(messages.list.map(m => m.title), ['first', 'in flight', 'after'])
  assert.deepEqual(messages.list.map(m => m.id), [m1.id, m2.id, m3.id])
})
