// A real server process is stopped (SIGTERM) or killed (SIGKILL to its process group) and a new
// one is started on the same database: nothing that got a 202 may be lost, and per device the
// order is accept order.
import { test, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { connectDevice, type Received, type TestDevice } from './helpers/herald.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { killAllServers, serverEnv, spawnServer, type ServerProcess } from './helpers/process.js'

const databases: TestDatabase[] = []
const devices: TestDevice[] = []

after(async () => {
  for (const d of devices) d.client.end(true)
  await killAllServers()
  await Promise.all(databases.map(db => db.drop()))
})

async function freshDatabase (): Promise<TestDatabase> {
  const db = await createTestDatabase()
  databases.push(db)
  return db
}

async function device (server: ServerProcess, clientId: string, user: string, token?: string): Promise<TestDevice> {
  const d = await connectDevice(server.wsUrl, { clientId, password: token ?? await server.token(user), clean: false })
  devices.push(d)
  return d
}

/** A persistent device that subscribed to its inbox and then went away. */
async function offlinePersistentDevice (server: ServerProcess, clientId: string, user: string): Promise<void> {
  const d = await device(server, clientId, user)
  const granted = await d.client.subscribeAsync(`users/${user}/inbox`, { qos: 1 })
  assert.equal(granted[0]?.qos, 1)
  await d.close()
}

async function sendSequentially (server: ServerProcess, user: string, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await server.api('/v1/messages', { body: { to: { user }, title: `m${i}`, data: { n: i } } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    assert.equal(res.body.recipients, 1)
    ids.push(res.body.id)
  }
  return ids
}

async function waitForDeliveredStatus (
  server: ServerProcess, ids: string[], deviceId: string, timeoutMs = 10_000
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let left = ids
  while (left.length > 0) {
    const statuses = await mapLimit(left, 8, async id => {
      const res = await server.api(`/v1/messages/${id}`)
      assert.equal(res.status, 200, JSON.stringify(res.body))
      const row = (res.body.deliveries as Array<{ deviceId: string, status: string, deliveredAt: string | null }>)
        .find(d => d.deviceId === deviceId)
      assert.ok(row, `message ${id} has no delivery for ${deviceId}: ${JSON.stringify(res.body)}`)
      return { id, status: row.status, deliveredAt: row.deliveredAt }
    })
    for (const s of statuses) {
      if (s.status === 'delivered') assert.ok(s.deliveredAt, `${s.id} is delivered without deliveredAt`)
    }
    left = statuses.filter(s => s.status !== 'delivered').map(s => s.id)
    if (left.length === 0) return
    if (Date.now() > deadline) {
      const some = statuses.filter(s => s.status !== 'delivered').slice(0, 5)
      assert.fail(`${left.length} deliveries are not "delivered": ${JSON.stringify(some)}`)
    }
    await sleep(100)
  }
}

async function restartAfterQueued (t: TestContext, how: 'term' | 'kill9'): Promise<void> {
  const db = await freshDatabase()
  const first = await spawnServer({ env: serverEnv(db.url) })
  const user = `u-${how}`
  const clientId = `${user}-phone`
  const token = await first.token(user)
  await offlinePersistentDevice(first, clientId, user)
  const ids = await sendSequentially(first, user, 50)

  if (how === 'term') {
    // a device online during the shutdown must not hold it up
    const online = await device(first, `${user}-online`, `${user}-other`)
    const closed = new Promise<void>(resolve => online.client.once('close', () => resolve()))
    const exit = await first.term()
    await closed
    t.diagnostic(`SIGTERM to exit: ${exit.ms} ms`)
    assert.equal(exit.code, 0, `SIGTERM: exit ${JSON.stringify(exit)}\n${first.output()}`)
    assert.ok(exit.ms < 5_000, `SIGTERM took ${exit.ms} ms`)
    assert.match(first.stdout(), /"msg":"stopped"/, 'the server logs that it stopped')
  } else {
    const exit = await first.kill9()
    assert.equal(exit.signal, 'SIGKILL')
  }

  const second = await spawnServer({ env: serverEnv(db.url) })
  // the token of the first process is still valid: the secret is the same
  const d = await device(second, clientId, user, token)
  const got = await d.waitFor(50, 15_000)
  await sleep(200) // nothing beyond the 50 arrives
  assert.deepEqual(d.received.map(r => r.payload.id), ids, 'all 50, in accept order, no gaps, no duplicates')
  assert.deepEqual(got.map(r => r.payload.title), ids.map((_, i) => `m${i}`))
  for (const r of got) assert.equal(r.topic, `users/${user}/inbox`)
  await waitForDeliveredStatus(second, ids, clientId)
  await d.close()
  const exit = await second.term()
  assert.equal(exit.code, 0, second.output())
}

test('graceful restart: SIGTERM exits 0 promptly, ' +
  'a new process delivers all 50 queued messages in order', async (t) => {
  await restartAfterQueued(t, 'term')
})

test('kill -9 with messages queued: a new process delivers all 50 in order', async (t) => {
  await restartAfterQueued(t, 'kill9')
})

test('kill -9 while streaming: every message that got a 202 reaches the device, in accept order', async (t) => {
  await restartWhileStreaming(t, 'kill9')
})

test('SIGTERM while streaming: exits 0, every message that got a 202 reaches the device, ' +
  'in accept order', async (t) => {
  await restartWhileStreaming(t, 'term')
})

async function restartWhileStreaming (t: TestContext, how: 'term' | 'kill9'): Promise<void> {
  const db = await freshDatabase()
  const env = serverEnv(db.url)
  const first = await spawnServer({ env })
  const user = `streamer-${how}`
  const clientId = `${user}-phone`
  const token = await first.token(user)

  const before = await device(first, clientId, user, token)
  await before.client.subscribeAsync(`users/${user}/inbox`, { qos: 1 })
  // a slow device: 5 ms before each PUBACK, so at the kill there are messages written but not
  // acknowledged and messages still queued in the server
  before.client.handleMessage = (_packet, callback) => { setTimeout(() => callback(), 5) }

  const TOTAL = 300
  const LANES = 4
  const KILL_AFTER = 150
  const accepted: Array<{ id: string, lane: number, n: number }> = []
  let unanswered = 0
  let refused = 0
  let killing: Promise<{ code: number | null, signal: string | null, ms?: number }> | undefined
  let next = 0

  // LANES senders, each sending one request at a time: within a lane, request k+1 is sent only
  // after k was answered 202, so k was committed first and must reach the device first
  const lane = async (laneNo: number): Promise<void> => {
    let n = 0
    while (next < TOTAL) {
      const i = next++
      let res
      try {
        res = await first.api('/v1/messages', {
          body: { to: { user }, body: `lane ${laneNo} #${n}`, data: { lane: laneNo, n, i } }
        })
      } catch {
        unanswered++
        return // the server is gone
      }
      if (res.status === 503 && killing) {
        refused++ // shutting down: refused, never accepted
        return
      }
      assert.equal(res.status, 202, JSON.stringify(res.body))
      accepted.push({ id: res.body.id, lane: laneNo, n })
      n++
      if (accepted.length === KILL_AFTER) killing ??= how === 'kill9' ? first.kill9() : first.term()
    }
  }
  await Promise.all(Array.from({ length: LANES }, (_, l) => lane(l)))
  assert.ok(killing, `the kill never happened: only ${accepted.length} of ${TOTAL} accepted`)
  const exit = await killing
  if (how === 'kill9') assert.equal(exit.signal, 'SIGKILL')
  else {
    assert.equal(exit.code, 0, `SIGTERM under load exits 0: ${JSON.stringify(exit)}\n${first.output().slice(-4_000)}`)
    const ms = exit.ms ?? 0
    t.diagnostic(`SIGTERM under load to exit: ${ms} ms`)
    assert.ok(ms < 5_000, `SIGTERM under load took ${ms} ms`)
  }
  before.client.end(true)
  const receivedBefore = before.received.slice()
  const acceptedIds = new Set(accepted.map(a => a.id))
  const missingAtKill = [...acceptedIds].filter(id => !receivedBefore.some(r => r.payload.id === id)).length
  t.diagnostic(`accepted ${accepted.length}, unanswered ${unanswered}, refused ${refused}, ` +
    `received before the kill ${receivedBefore.length}, accepted but not received at the kill ${missingAtKill}`)
  assert.ok(accepted.length >= KILL_AFTER)

  const second = await spawnServer({ env })
  const afterRestart = await device(second, clientId, user, token)
  const deadline = Date.now() + 20_000
  const have = (): Set<string> => new Set([...receivedBefore, ...afterRestart.received].map(r => r.payload.id))
  for (;;) {
    const missing = [...acceptedIds].filter(id => !have().has(id))
    if (missing.length === 0) break
    if (Date.now() > deadline) {
      assert.fail(`${missing.length} accepted messages never arrived, e.g. ${missing.slice(0, 3).join(', ')}\n` +
        second.output().slice(-4_000))
    }
    await sleep(50)
  }
  await sleep(300) // stragglers (duplicates, unanswered sends that were committed) may still come

  // order: the seq the database gave each delivery is commit order; every connection must
  // deliver in increasing seq, and the first arrival of each id must be in increasing seq
  const { rows } = await db.pool.query<{ id: string, seq: number }>(
    'select message_id::text as id, seq from deliveries where device_id = $1', [clientId])
  const seqOf = new Map(rows.map(r => [r.id, r.seq]))
  for (const id of acceptedIds) assert.ok(seqOf.has(id), `accepted ${id} has no delivery row`)
  const assertIncreasing = (stream: Received[], what: string): void => {
    const seqs = stream.map(r => seqOf.get(r.payload.id))
    for (let i = 0; i < seqs.length; i++) {
      assert.notEqual(seqs[i], undefined, `${what}: unknown message ${stream[i].payload.id}`)
    }
    for (let i = 1; i < seqs.length; i++) {
      assert.ok(seqs[i]! > seqs[i - 1]!, `${what}: seq ${seqs[i]} after ${seqs[i - 1]} at #${i}`)
    }
  }
  assertIncreasing(receivedBefore, 'before the kill')
  assertIncreasing(afterRestart.received, 'after the restart')
  const firstArrivals: Received[] = []
  const seen = new Set<string>()
  for (const r of [...receivedBefore, ...afterRestart.received]) {
    if (seen.has(r.payload.id)) continue
    seen.add(r.payload.id)
    firstArrivals.push(r)
  }
  assertIncreasing(firstArrivals, 'first arrivals')
  // and within each lane, the order in which the 202s came back
  for (let l = 0; l < LANES; l++) {
    const laneIds = accepted.filter(a => a.lane === l).map(a => a.id)
    const arrivedInLane = firstArrivals.map(r => r.payload.id as string).filter(id => laneIds.includes(id))
    assert.deepEqual(arrivedInLane, laneIds, `lane ${l}: arrival order is the order of its 202s`)
  }
  // the payload is intact after the restart
  for (const r of afterRestart.received) {
    assert.equal(r.topic, `users/${user}/inbox`)
    assert.equal(typeof r.payload.sentAt, 'string')
    assert.match(r.payload.body, /^lane \d #\d+$/)
  }

  await waitForDeliveredStatus(second, [...acceptedIds], clientId)
  await afterRestart.close()
  const stop = await second.term()
  assert.equal(stop.code, 0, second.output())
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let i = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const k = i++
      results[k] = await fn(items[k])
    }
  }))
  return results
}
