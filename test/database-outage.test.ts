// A database outage: issue 2, "Bad input". Herald talks to Postgres through a TCP proxy that the
// test cuts: readyz fails, sends get 503, the process keeps running, nothing accepted before is
// lost, and service resumes when the database returns.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, connectDevice, type TestHerald, type TestDevice } from './helpers/herald.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { proxyDatabase, type TcpProxy } from './helpers/tcpProxy.js'
import { connectRefused, sleep } from './helpers/probe.js'
import { createPool } from '../server/db/pool.js'
import { createLogger } from '../server/log.js'
import { Cluster } from '../server/services/cluster.js'
import type { DeliveryEngine } from '../server/delivery/engine.js'
import { ACCEPT_LOCK } from '../server/store/accept.js'

let db: TestDatabase
let proxy: TcpProxy
let h: TestHerald
let online: TestDevice | undefined

before(async () => {
  db = await createTestDatabase()
  const proxied = await proxyDatabase(db.url)
  proxy = proxied.proxy
  h = await startTestHerald({ db, env: { DATABASE_URL: proxied.url } })
})

after(async () => {
  proxy?.restore()
  await online?.close()
  await h?.stop()
  await proxy?.close()
  await db?.drop()
})

async function until<T> (what: string, probe: () => Promise<T>, ok: (value: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  let last: T
  for (;;) {
    last = await probe()
    if (ok(last)) return last
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${ms} ms`)
    await sleep(100)
  }
}

const readyz = async (): Promise<{ status: number, body: any }> => {
  const res = await fetch(`${h.url}/readyz`)
  return { status: res.status, body: await res.json() }
}

test('an outage: readyz 503, sends 503 database-unavailable, the process keeps running; ' +
  'then everything resumes without loss', async () => {
  // before: an offline persistent device with a message queued, and a device online throughout
  const away = await connectDevice(h.wsUrl, { clientId: 'outage-away', password: await h.token('otto'), clean: false })
  await away.client.subscribeAsync('users/otto/inbox', { qos: 1 })
  await away.close()
  online = await connectDevice(h.wsUrl, { clientId: 'outage-online', password: await h.token('olga'), clean: false })
  const queued = await h.api('/v1/messages', { body: { to: { user: 'otto' }, title: 'before the outage' } })
  assert.equal(queued.status, 202, JSON.stringify(queued.body))
  assert.equal(queued.body.recipients, 1)
  const ottoToken = await h.token('otto')
  assert.equal((await readyz()).status, 200)
  assert.ok(proxy.connections > 0, 'Herald reaches Postgres through the proxy')

  proxy.cut()

  const notReady = await readyz()
  assert.equal(notReady.status, 503, JSON.stringify(notReady.body))
  assert.equal(notReady.body.checks.database.ok, false)
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200, 'the process is alive')

  for (let i = 0; i < 3; i++) {
    const started = Date.now()
    const refused = await h.api('/v1/messages', { body: { to: { user: 'otto' }, title: `during the outage ${i}` } })
    assert.equal(refused.status, 503, JSON.stringify(refused.body))
    assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.equal(refused.body.code, 'database-unavailable')
    assert.ok(refused.headers.get('retry-after'), 'Retry-After is set')
    assert.ok(Date.now() - started < 7_000, 'bounded by the pool\'s connection timeout')
  }
  const read = await h.api(`/v1/messages/${queued.body.id}`)
  assert.equal(read.status, 503, JSON.stringify(read.body))
  assert.equal(read.body.code, 'database-unavailable')

  // a device cannot be registered now: CONNACK 3 (server unavailable), not a crash
  assert.equal(await connectRefused(h.wsUrl, { clientId: 'outage-newcomer', password: await h.token('nina') }), 3)

  // background work (heartbeats, state writes, maintenance) fails for a while; nothing dies
  await sleep(1_500)
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200)
  assert.equal((await readyz()).status, 503)

  proxy.restore()

  await until('readyz after restore', readyz, r => r.status === 200)
  const after = await until('a send after restore',
    () => h.api('/v1/messages', { body: { to: { user: 'otto' }, title: 'after the outage' } }),
    r => r.status !== 503)
  assert.equal(after.status, 202, JSON.stringify(after.body))

  // the message accepted before the cut reaches the device that was away, in order
  const back = await connectDevice(h.wsUrl, { clientId: 'outage-away', password: ottoToken, clean: false })
  try {
    const got = await back.waitFor(2)
    assert.deepEqual(got.map(r => r.payload.id), [queued.body.id, after.body.id])
  } finally {
    await back.close()
  }

  // the device that stayed connected is served again
  const live = await h.api('/v1/messages', { body: { to: { user: 'olga' }, title: 'live again' } })
  assert.equal(live.status, 202)
  const [msg] = await online.waitFor(1)
  assert.equal(msg.payload.id, live.body.id)

  // nothing refused during the outage was stored
  const { rows } = await db.pool.query<{ title: string }>('select title from messages order by accepted_at')
  assert.deepEqual(rows.map(r => r.title), ['before the outage', 'after the outage', 'live again'])

  // and the delivery state caught up
  await until('delivery rows delivered',
    async () => (await h.api(`/v1/messages/${queued.body.id}`)).body.deliveries?.[0]?.status,
    s => s === 'delivered')
})

/** Leaves idle connections in Herald's pool, so the next queries reuse them. */
async function warmPool (): Promise<void> {
  await Promise.all(Array.from({ length: 8 }, () => h.api('/v1/messages?limit=5')))
}

test('a network partition (connections hang, nothing answers): ' +
  'readyz answers 503 within seconds, 200 once healed', async () => {
  await warmPool()
  proxy.blackhole()
  try {
    const started = Date.now()
    const r = await readyz()
    assert.equal(r.status, 503, JSON.stringify(r.body))
    assert.equal(r.body.checks.database.ok, false)
    assert.ok(Date.now() - started < 5_000, `readyz took ${Date.now() - started} ms`)
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200)
  } finally {
    proxy.restore()
  }
  await until('readyz after the partition heals', readyz, r => r.status === 200)
  const sent = await h.api('/v1/messages', { body: { to: { user: 'olga' }, title: 'healed' } })
  assert.equal(sent.status, 202)
})

test('a network partition: a send answers 503 within the query timeout', async () => {
  await warmPool()
  proxy.blackhole()
  let status: number | string
  const send = h.api('/v1/messages', { body: { to: { user: 'olga' }, title: 'during the partition' } })
  try {
    status = await Promise.race([send.then(r => r.status), sleep(7_000).then(() => 'no answer within 7 s')])
  } finally {
    proxy.restore()
  }
  await send // answered once the partition heals
  await until('readyz after the partition heals', readyz, r => r.status === 200)
  assert.equal(status, 503)
})

test('a device whose queue cannot be read (the database does not answer) stays connected and is served ' +
  'once it answers', async () => {
  // a message waits for rita's phone while it is away
  const away = await connectDevice(h.wsUrl, { clientId: 'unread-phone', password: await h.token('rita'), clean: false })
  await away.close()
  const sent = await h.api('/v1/messages', { body: { to: { user: 'rita' }, title: 'read me later' } })
  assert.equal(sent.status, 202, JSON.stringify(sent.body))
  // A connect's first read of its queue waits for sends in progress (the accept lock, shared):
  // holding that lock makes the read time out, as a database that stopped answering would.
  const locker = await db.pool.connect()
  const waitingReads = async (): Promise<number> => (await db.pool.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock' and query like '%advisory_xact_lock_shared%'`
  )).rows[0].n
  let d: TestDevice | undefined
  let closes = 0
  try {
    await locker.query('begin')
    await locker.query('select pg_advisory_xact_lock($1)', [ACCEPT_LOCK])
    d = await connectDevice(h.wsUrl, { clientId: 'unread-phone', password: await h.token('rita'), clean: false })
    d.client.on('close', () => { closes++ })
    // the first read timed out (its backend still waits: the client gave up on it) and a second is waiting
    await until('the read tried again', waitingReads, n => n >= 2, 15_000)
  } finally {
    await locker.query('commit')
    locker.release()
  }
  try {
    const [got] = await d.waitFor(1)
    assert.equal(got.payload.id, sent.body.id)
    assert.equal(closes, 0, 'the connection stayed')
  } finally {
    await d.close()
  }
})

test('a process stopped while its listener reconnects after an outage stops, leaving no connection open', async () => {
  // the cluster part alone, on a pool of its own: its stop must not depend on when the
  // reconnection it started ends (a leaked connection made the pool's end() wait forever)
  const { proxy: ownProxy, url: viaProxy } = await proxyDatabase(db.url)
  const pool = createPool({ connectionString: viaProxy, max: 2 })
  const nodeId = `stop-${process.pid}`
  // nothing is queued on this node: a reconnect has no device to wake
  const engine = { wakeAll () {} } as unknown as DeliveryEngine
  const cluster = new Cluster({ pool, nodeId, log: createLogger('silent'), engine, forgetApiKeys () {} })
  try {
    await cluster.start()
    ownProxy.stall()
    // the listener noticed and is connecting again, held by the stalled database
    await until('the reconnection held', async () => ownProxy.held, n => n >= 1, 5_000)
    await cluster.stop()
    ownProxy.restore()
    const ended = await Promise.race([pool.end().then(() => 'ended'), sleep(10_000).then(() => 'still waiting')])
    assert.equal(ended, 'ended', 'the pool ended: every connection it handed out came back')
    const { rowCount } = await db.pool.query('select 1 from pg_stat_activity where application_name = $1',
      [`herald node ${nodeId}`])
    assert.equal(rowCount, 0, 'no listener of the stopped process is left on the database')
  } finally {
    ownProxy.restore()
    await ownProxy.close()
  }
})
