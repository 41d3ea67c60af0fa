// PgPersistence against aedes-persistence's own conformance suite (the one the in-memory store
// passes), plus what that suite does not cover: enqueue order, the index reload at setup and the
// outgoingAcks hook.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import type { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { PgPersistence, type PgPersistenceOptions } from '../server/broker/pgPersistence.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'

const require = createRequire(import.meta.url)
const abstractPersistence: (opts: object) => void = require('aedes-persistence/abstract.js')

// Emptied before every test: `delete` rather than `truncate`, which makes new files for every
// table and waits for their fsync (60 ms against under 1 ms for these few rows; the suite has ~100
// tests). Neither resets the identity columns, so nothing else differs.
const EMPTY_MQTT_TABLES = ['mqtt_subscriptions', 'mqtt_outgoing', 'mqtt_incoming', 'mqtt_retained', 'mqtt_wills']
  .map(table => `delete from ${table};`).join(' ')

function conformance (title: string, options: Partial<PgPersistenceOptions>): void {
  describe(title, () => {
    let db: TestDatabase
    before(async () => { db = await createTestDatabase() })
    after(async () => { await db?.drop() })

    abstractPersistence({
      test: it,
      testAsync: true,
      persistence: async () => {
        // the suite runs one test at a time and destroys each instance before the next begins
        await db.pool.query(EMPTY_MQTT_TABLES)
        return new PgPersistence({ ...options, pool: db.pool })
      }
    })
  })
}

conformance('PgPersistence: aedes-persistence conformance', {})
conformance('PgPersistence: aedes-persistence conformance, broadcasting subscriptions', {
  broadcastSubscriptions: true
})

async function toArray (stream: Readable): Promise<any[]> {
  const items = []
  for await (const item of stream) items.push(item)
  return items
}

describe('PgPersistence beyond the conformance suite', () => {
  let db: TestDatabase
  before(async () => { db = await createTestDatabase() })
  after(async () => { await db?.drop() })

  async function fresh (options: Partial<PgPersistenceOptions> = {}): Promise<PgPersistence> {
    await db.pool.query(EMPTY_MQTT_TABLES)
    const persistence = new PgPersistence({ ...options, pool: db.pool })
    await persistence.setup({ id: 'broker-test' })
    return persistence
  }

  it('completes and queues 200 enqueues fired without waiting in call order', async () => {
    const persistence = await fresh()
    const completed: number[] = []
    const calls = Array.from({ length: 200 }, (_, i) => {
      const packet = {
        cmd: 'publish',
        topic: 'news',
        payload: Buffer.from(`m${i}`),
        qos: 1,
        retain: false,
        brokerId: 'broker-test',
        brokerCounter: i + 1
      }
      // a mix of both entry points, which share one queue
      const enqueued = i % 3 === 0
        ? persistence.outgoingEnqueue({ clientId: 'a' }, packet)
        : persistence.outgoingEnqueueCombi([{ clientId: 'a' }, { clientId: 'b' }], packet)
      return enqueued.then(() => { completed.push(i) })
    })
    await Promise.all(calls)

    const all = Array.from({ length: 200 }, (_, i) => i)
    assert.deepEqual(completed, all, 'promises settle in call order')
    const queuedA = await toArray(persistence.outgoingStream({ id: 'a' }))
    assert.deepEqual(queuedA.map(p => p.brokerCounter), all.map(i => i + 1))
    assert.deepEqual(queuedA.map(p => p.payload.toString()), all.map(i => `m${i}`))
    const queuedB = await toArray(persistence.outgoingStream({ id: 'b' }))
    assert.deepEqual(queuedB.map(p => p.brokerCounter), all.filter(i => i % 3 !== 0).map(i => i + 1))
    await persistence.destroy()
  })

  // aedes writes a live packet to the socket when its outgoingUpdate settles
  it('settles outgoingUpdates fired without waiting in call order', async () => {
    const persistence = await fresh()
    const packets = Array.from({ length: 100 }, (_, i) => ({
      cmd: 'publish',
      topic: 'news',
      payload: Buffer.from(`m${i}`),
      qos: 1,
      retain: false,
      brokerId: 'broker-test',
      brokerCounter: i + 1
    }))
    for (const packet of packets) await persistence.outgoingEnqueue({ clientId: 'a' }, packet)

    const settled: number[] = []
    await Promise.all(packets.map((packet, i) =>
      persistence.outgoingUpdate({ id: 'a' }, { ...packet, messageId: i + 1 }).then(() => { settled.push(i) })))
    assert.deepEqual(settled, packets.map((_, i) => i))
    const queued = await toArray(persistence.outgoingStream({ id: 'a' }))
    assert.deepEqual(queued.map(p => p.messageId), packets.map((_, i) => i + 1))
    await persistence.destroy()
  })

  it('reloads the subscription index at setup', async () => {
    const first = await fresh()
    await first.addSubscriptions({ id: 'dev-1' }, [{ topic: 'users/+/push', qos: 1 }, { topic: 'quiet', qos: 0 }])
    await first.destroy()

    const second = new PgPersistence({ pool: db.pool })
    await second.setup({ id: 'broker-test' })
    assert.deepEqual((await second.subscriptionsByTopic('users/u1/push')).map(s => s.clientId), ['dev-1'])
    assert.deepEqual(await second.subscriptionsByTopic('quiet'), [])
    assert.equal((await second.subscriptionsByClient({ id: 'dev-1' })).length, 2)
    await second.destroy()
  })

  it('lets outgoingAcks claim an ack before the queue is touched', async () => {
    const claimed = { cmd: 'publish', topic: 'push', messageId: 7 }
    const persistence = await fresh({
      outgoingAcks: (client, messageId) => client.id === 'dev-1' && messageId === 7 ? claimed : undefined
    })
    const packet = {
      cmd: 'publish', topic: 'push', payload: Buffer.from('x'), qos: 1, brokerId: 'broker-test', brokerCounter: 1
    }
    await persistence.outgoingEnqueue({ clientId: 'dev-1' }, packet)
    await persistence.outgoingUpdate({ id: 'dev-1' }, { ...packet, messageId: 7 })

    const client = { id: 'dev-1' } as Parameters<PgPersistence['outgoingClearMessageId']>[0]
    assert.equal(await persistence.outgoingClearMessageId(client, { messageId: 7 }), claimed)
    assert.equal((await toArray(persistence.outgoingStream(client))).length, 1, 'the queued row is untouched')
    await persistence.destroy()
  })
})
