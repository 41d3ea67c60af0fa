// DATABASE_PREPARED_STATEMENTS (createPool's preparedStatements): a server whose pool has it off
// prepares nothing on any of its connections through a device's connect, a send and its delivery,
// so it works behind PgBouncer in transaction mode; with it on, the statements named at their
// call site are prepared there. Read from Postgres itself (pg_prepared_statements, per session).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createPool, type Pool } from '../server/db/pool.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { startTestHerald } from './helpers/herald.js'
import { device, send, waitForStatus, waitUntil } from './helpers/delivery.js'

const databases: TestDatabase[] = []
after(async () => { await Promise.all(databases.map(db => db.drop())) })

/**
 * The prepared statements of every connection the pool holds but one: the cluster listener's,
 * checked out for good, which runs only LISTEN and an advisory lock, all unparameterised. Once
 * every other connection is idle (a maintenance query may hold one a moment), taking as many
 * clients as are idle hands back each of them; the total staying the same proves no new
 * connection stood in for one.
 */
async function preparedOnEveryConnection (pool: Pool): Promise<string[][]> {
  await waitUntil('every connection but the listener idle', async () => pool.idleCount === pool.totalCount - 1)
  const held = pool.totalCount
  const clients = await Promise.all(Array.from({ length: pool.idleCount }, () => pool.connect()))
  try {
    assert.equal(pool.totalCount, held, 'every connection checked is one the server used')
    return await Promise.all(clients.map(async c =>
      (await c.query<{ name: string }>('select name from pg_prepared_statements order by name')).rows.map(r => r.name)))
  } finally {
    for (const c of clients) c.release()
  }
}

/** A persistent device connects and subscribes, gets a push and acknowledges it; the ledger says delivered. */
async function connectSendDeliver (preparedStatements: boolean): Promise<string[][]> {
  const db = await createTestDatabase()
  databases.push(db)
  const pool = createPool({ connectionString: db.url, preparedStatements })
  const h = await startTestHerald({ db, deps: { pool } })
  try {
    const phone = await device(h, 'pat', 'pat-phone')
    const { id } = await send(h, { to: { user: 'pat' }, title: 'hello', collapseKey: 'greeting' })
    await phone.waitFor(1)
    await waitForStatus(h, id, 'pat-phone', 'delivered')
    await phone.close()
    return await preparedOnEveryConnection(pool)
  } finally {
    await h.stop()
    await pool.end()
  }
}

test('preparedStatements off: no connection of the server has a prepared statement after a connect, send and delivery',
  async () => {
    const perConnection = await connectSendDeliver(false)
    assert.ok(perConnection.length > 0, 'the server used its pool')
    assert.deepEqual(perConnection.flat(), [], JSON.stringify(perConnection))
  })

test('preparedStatements on: the statements named at their call site are prepared, under their names', async () => {
  const prepared = new Set((await connectSendDeliver(true)).flat())
  for (const name of [
    'herald_claim_device', // a device's connect
    'herald_mqtt_subscriptions_of', // a persistent session's subscriptions, read at connect
    'herald_mqtt_upsert_subscriptions', // its SUBSCRIBE
    'herald_accept_insert_messages', // the send
    'herald_accept_insert_deliveries',
    'herald_pending_for_devices', // the device's queue
    'herald_mark_delivered' // its PUBACK
  ]) assert.ok(prepared.has(name), `${name} is prepared: ${JSON.stringify([...prepared])}`)
  // only named statements are prepared: nothing under another name (pg's unnamed ones are not listed)
  for (const name of prepared) assert.match(name, /^herald_/)
})
