// Several Herald processes on one database (server/services/cluster.ts, store/signals.ts): what a
// backend or a device sees must not depend on which process it talks to. Each node here is a
// startHerald of its own in this test process (its own node id, pool, LISTEN connection and
// ports) on one database, with real mqtt.js devices over WebSocket; killing and restarting
// processes is test/cluster-processes.test.ts.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { ADMIN_PASSWORD, connectDevice, startTestHerald, type TestDevice, type TestHerald } from './helpers/herald.js'
import {
  deliveryOf, device, getMessage, ids, listDevices, reconnect, send, waitOffline, waitUntil
} from './helpers/delivery.js'
import {
  arrivals, assertSeqOrder, choresHolders, closedWithin, deliverySeqs, holdAcks
} from './helpers/cluster.js'

let db: TestDatabase
/** A, B, C: three processes on one database */
let nodes: TestHerald[]
const extra: TestHerald[] = []
const devices: TestDevice[] = []

before(async () => {
  db = await createTestDatabase()
  nodes = await Promise.all([0, 1, 2].map(() => startTestHerald({ db })))
  assert.equal(new Set(nodes.map(n => n.herald.nodeId)).size, 3, 'three nodes')
})

after(async () => {
  for (const d of devices) d.client.end(true)
  await Promise.all([...nodes, ...extra].map(n => n.stop()))
  await db.drop()
})

const names = ['A', 'B', 'C']

type DeviceOptions = Parameters<typeof device>[3]

async function on (h: TestHerald, user: string, clientId: string, opts: DeviceOptions = {}): Promise<TestDevice> {
  const d = await device(h, user, clientId, opts)
  devices.push(d)
  return d
}

/** The node holding the device's connection, as the database says. */
async function connectedNode (deviceId: string): Promise<string | null> {
  const { rows } = await db.pool.query<{ node: string | null }>(
    'select connected_node as node from devices where device_id = $1', [deviceId])
  return rows[0]?.node ?? null
}

/** A, B or C for a node id (or what it is, when it is none of them). */
function nameOf (nodeId: string | null): string {
  const i = nodes.findIndex(n => n.herald.nodeId === nodeId)
  return i >= 0 ? names[i] : String(nodeId)
}

/**
 * Ends `node`'s LISTEN connection again and again (it reconnects 100 ms after each) until the
 * function returned is called: signals sent meanwhile are very likely lost. Resolves once cut.
 */
async function cutListener (node: TestHerald): Promise<() => Promise<number>> {
  const name = `herald node ${node.herald.nodeId}`
  const cut = { on: true, times: 0 }
  const cutter = (async () => {
    while (cut.on) {
      const { rowCount } = await db.pool.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [name])
      cut.times += rowCount ?? 0
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  })()
  const stop = async (): Promise<number> => {
    cut.on = false
    await cutter
    const listening = async (): Promise<boolean> =>
      (await db.pool.query('select 1 from pg_stat_activity where application_name = $1', [name])).rowCount === 1
    await waitUntil(`${name} listening again`, listening, 10_000)
    return cut.times
  }
  await waitUntil(`${name} cut`, async () => cut.times > 0, 5_000, 5).catch(async err => { await stop(); throw err })
  return stop
}

/** Counts the connections a device opens and loses after this call: live delivery needs neither. */
function watchConnection (d: TestDevice): () => { reconnects: number, closes: number } {
  let reconnects = 0
  let closes = 0
  d.client.on('connect', () => { reconnects++ })
  d.client.on('close', () => { closes++ })
  return () => ({ reconnects, closes })
}

test('one process of the three runs the cluster\'s chores', async () => {
  const holders = await waitUntil('a process to take the chores', async () => {
    const h = await choresHolders(db.pool)
    return h.length > 0 ? h : undefined
  }, 10_000)
  assert.equal(holders.length, 1, `one holder: ${holders.join(', ')}`)
  assert.ok(nodes.some(n => n.herald.nodeId === holders[0]), `held by ${holders[0]}, one of the three`)
})

test('live delivery anywhere: a message accepted by any process reaches a device connected to any process, ' +
  'without a reconnect', async (t) => {
  // one device per process for a user of its own, and one user with a device on each process
  const single = await Promise.all(nodes.map((h, i) => on(h, `live-${i}`, `live-${i}-phone`)))
  const spread = await Promise.all(nodes.map((h, i) => on(h, 'live-all', `live-all-${names[i]}`)))
  for (let i = 0; i < 3; i++) {
    assert.equal(await connectedNode(`live-${i}-phone`), nodes[i].herald.nodeId)
    assert.equal(await connectedNode(`live-all-${names[i]}`), nodes[i].herald.nodeId)
  }
  const watched = [...single, ...spread].map(watchConnection)

  const latencies: number[] = []
  const expectSingle: string[][] = [[], [], []]
  const expectSpread: string[] = []
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < 3; i++) {
      // every sender to every receiver: A→A, A→B, A→C, B→A, …
      const sent = await send(nodes[s], { to: { user: `live-${i}` }, title: `${names[s]}→${names[i]}` })
      assert.equal(sent.recipients, 1)
      const at = Date.now()
      expectSingle[i].push(sent.id)
      await arrivals(single[i], [sent.id], 5_000, `${names[s]}→${names[i]}`)
      latencies.push(Date.now() - at)
    }
    for (const ttl of [3600, 0]) {
      // ttl 0: only devices online now, handed over by signal (engine.offerLive), never read from a queue
      const sent = await send(nodes[s], { to: { user: 'live-all' }, title: `${names[s]}→all ttl ${ttl}`, ttl })
      assert.equal(sent.recipients, 3, `${names[s]}→all ttl ${ttl}: every online device counts`)
      const at = Date.now()
      expectSpread.push(sent.id)
      await Promise.all(spread.map((d, i) =>
        arrivals(d, [sent.id], 5_000, `${names[s]}→all ttl ${ttl}, device on ${names[i]}`)))
      latencies.push(Date.now() - at)
    }
  }
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(ids(single[i]), expectSingle[i], `device on ${names[i]}: each once, in accept order`)
    assert.deepEqual(ids(spread[i]), expectSpread, `live-all on ${names[i]}: each once, in accept order`)
  }
  for (const w of watched) assert.deepEqual(w(), { reconnects: 0, closes: 0 }, 'no device reconnected')
  // the ttl 0 ones were delivered, not left for the expiry sweep
  for (let i = 0; i < 3; i++) {
    for (const id of expectSpread) {
      await waitUntil(`${id} delivered to live-all-${names[i]}`,
        async () => (await deliveryOf(nodes[(i + 1) % 3], id, `live-all-${names[i]}`))?.status === 'delivered', 5_000)
    }
  }
  latencies.sort((a, b) => a - b)
  t.diagnostic(`202 to arrival: max ${latencies.at(-1)} ms, median ${latencies[latencies.length >> 1]} ms`)
  await Promise.all([...single, ...spread].map(d => d.close()))
})

test('topics anywhere: a subscription made on any process counts for a topic message sent through any ' +
  'other', async () => {
  const topic = 'topics/cluster-news'
  // A: a persistent session at QoS 1 (mqtt_subscriptions); B: a clean session (live_subscriptions
  // only); C: a persistent session at QoS 0 (not kept for while it is away: counts while connected)
  const onA = await on(nodes[0], 'tp-a', 'tp-a-phone', { topics: [topic] })
  const onB = await on(nodes[1], 'tp-b', 'tp-b-phone', { clean: true, topics: [topic] })
  const onC = await on(nodes[2], 'tp-c', 'tp-c-phone')
  const granted = await onC.client.subscribeAsync(topic, { qos: 0 })
  assert.equal(granted[0].qos, 0)
  const everyone = [onA, onB, onC]

  const expected: string[] = []
  for (let s = 0; s < 3; s++) {
    for (const ttl of [3600, 0]) {
      const sent = await send(nodes[s], { to: { topic: 'cluster-news' }, title: `via ${names[s]} ttl ${ttl}`, ttl })
      assert.equal(sent.recipients, 3, `through ${names[s]} (ttl ${ttl}): the subscriptions on A, B and C all count`)
      expected.push(sent.id)
      await Promise.all(everyone.map((d, i) =>
        arrivals(d, [sent.id], 5_000, `topic via ${names[s]} ttl ${ttl} to the device on ${names[i]}`)))
    }
  }
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(ids(everyone[i]), expected, `device on ${names[i]}: each once, in accept order`)
    for (const r of everyone[i].received) assert.equal(r.topic, topic)
  }

  // the clean session on B goes away: no longer counted through A or C, and nothing is queued for it
  await onB.close()
  await waitOffline(nodes[0], 'tp-b', 'tp-b-phone')
  const afterLeaving = await send(nodes[2], { to: { topic: 'cluster-news' }, title: 'B left' })
  assert.equal(afterLeaving.recipients, 2, 'a clean session that ended on B is not a subscriber any more')
  await Promise.all([onA, onC].map(d => arrivals(d, [afterLeaving.id], 5_000, 'after B left')))

  // the persistent QoS 1 session on A, offline: still a subscriber, queued for, served on its return (to B)
  await onA.close()
  await waitOffline(nodes[1], 'tp-a', 'tp-a-phone')
  const whileAway = await send(nodes[2], { to: { topic: 'cluster-news' }, title: 'A away' })
  assert.equal(whileAway.recipients, 2,
    'the persistent QoS 1 subscription counts while its device is away; C\'s QoS 0 one while online')
  const back = await reconnect(nodes[1], 'tp-a', 'tp-a-phone')
  devices.push(back)
  await arrivals(back, [whileAway.id], 5_000, 'A back on B')
  // restored on B, the session's subscription is now held there: a send through A reaches it live
  const live = await send(nodes[0], { to: { topic: 'cluster-news' }, title: 'A on B' })
  assert.equal(live.recipients, 2)
  await arrivals(back, [live.id], 5_000, 'live on B after the move')
  await Promise.all([back.close(), onC.close()])
})

test('topics anywhere: an UNSUBSCRIBE answered on one process stops the device counting for a send through ' +
  'another', async (t) => {
  const [A, B] = nodes
  const topic = 'topics/cluster-unsub'
  const d = await on(B, 'unsub', 'unsub-phone', { clean: true, topics: [topic] })
  // the database is slow to forget the subscription: its row is locked for a moment
  const lock = await db.pool.connect()
  let sent: { id: string, recipients: number }
  try {
    await lock.query('begin')
    await lock.query('select 1 from live_subscriptions where device_id = $1 for update', ['unsub-phone'])
    const unsubscribed = d.client.unsubscribeAsync(topic)
    const answered = await Promise.race([unsubscribed.then(() => true),
      new Promise<boolean>(resolve => setTimeout(() => resolve(false), 1_000))])
    t.diagnostic(answered ? 'UNSUBACK sent before the subscription was forgotten' : 'UNSUBACK waits for the database')
    if (!answered) {
      await lock.query('rollback')
      await unsubscribed
    }
    // the backend sends once the device has its UNSUBACK, through another process
    sent = await send(A, { to: { topic: 'cluster-unsub' }, title: 'after the UNSUBACK' })
  } finally {
    await lock.query('rollback')
    lock.release()
  }
  const delivered = await arrivals(d, [sent.id], 1_000, 'after UNSUBACK').then(() => true, () => false)
  t.diagnostic(`recipients ${sent.recipients}, delivered to the unsubscribed device: ${delivered}`)
  assert.equal(sent.recipients, 0, '[MQTT-3.10.4-2] no new message for a topic after its UNSUBACK')
  assert.equal(delivered, false)
  await d.close()
})

test('control anywhere: DELETE /v1/devices through A closes the connection on B within 1 s and revokes its ' +
  'queue', async (t) => {
  const [A, B] = nodes
  const d = await on(B, 'ctl-del', 'ctl-del-phone')
  // a message written but held unacknowledged, so the device's queue has something to revoke
  const release = holdAcks(d)
  const held = await send(A, { to: { user: 'ctl-del' }, title: 'held' })
  await arrivals(d, [held.id], 5_000, 'the held message')
  const closed = closedWithin(d)
  const started = Date.now()
  const res = await A.api('/v1/devices/ctl-del-phone', { method: 'DELETE' })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.deepEqual(res.body, { deviceId: 'ctl-del-phone', revoked: 1, disconnected: true })
  const ms = await closed(started, 5_000)
  t.diagnostic(`DELETE through A to the close on B: ${ms} ms`)
  assert.ok(ms < 1_000, `the connection on B closed ${ms} ms after the DELETE through A`)
  release()
  assert.equal((await deliveryOf(B, held.id, 'ctl-del-phone')).status, 'revoked')
  const listed = await listDevices(nodes[2], 'ctl-del')
  await waitUntil('the ended device offline and not persistent', async () => {
    const row = (await listDevices(nodes[2], 'ctl-del')).find(x => x.deviceId === 'ctl-del-phone')
    return row?.online === false && row?.persistent === false
  }, 5_000).catch(err => assert.fail(`${(err as Error).message}: ${JSON.stringify(listed)}`))
  // a send now does not count it
  assert.equal((await send(nodes[2], { to: { user: 'ctl-del' }, title: 'after' })).recipients, 0)
})

test('control anywhere: revoke and collapse through other processes act on a queue served by B', async () => {
  const [A, , C] = nodes
  // a fourth process whose in-flight window is 1: while its device holds a PUBACK, the rest stays queued
  const B1 = await startTestHerald({ db, env: { MAX_INFLIGHT_PER_DEVICE: '1' } })
  extra.push(B1)
  const d = await on(B1, 'ctl-q', 'ctl-q-phone')
  const release = holdAcks(d)
  const first = await send(A, { to: { user: 'ctl-q' }, title: 'first' })
  await arrivals(d, [first.id], 5_000, 'first')

  const replaced = await send(A, { to: { user: 'ctl-q' }, title: 'old score', collapseKey: 'score' })
  const revoked = await send(C, { to: { user: 'ctl-q' }, title: 'revoked' })
  const replacing = await send(C, { to: { user: 'ctl-q' }, title: 'new score', collapseKey: 'score' })
  const last = await send(A, { to: { user: 'ctl-q' }, title: 'last' })
  const res = await A.api(`/v1/messages/${revoked.id}`, { method: 'DELETE' })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.revoked, 1)
  // the device had none of them yet: the window was full
  assert.deepEqual(ids(d), [first.id])

  const old = await deliveryOf(C, replaced.id, 'ctl-q-phone')
  assert.equal(old.status, 'replaced')
  assert.equal(old.replacedBy, replacing.id)
  assert.equal((await deliveryOf(B1, revoked.id, 'ctl-q-phone')).status, 'revoked')

  release()
  await arrivals(d, [replacing.id, last.id], 5_000, 'after the window opened')
  await new Promise(resolve => setTimeout(resolve, 200)) // nothing else comes
  assert.deepEqual(ids(d), [first.id, replacing.id, last.id], 'neither the replaced nor the revoked one was written')
  for (const id of [first.id, replacing.id, last.id]) {
    await waitUntil(`${id} delivered`,
      async () => (await deliveryOf(A, id, 'ctl-q-phone'))?.status === 'delivered', 5_000)
  }
  await d.close()
})

test('control anywhere: an API key revoked through A fails on B and C within 1 s (their caches trust a key ' +
  '5 s)', async (t) => {
  const [A, B, C] = nodes
  const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`
  const created = await A.api('/v1/api-keys', { body: { name: 'cluster' }, headers: { authorization: basic } })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const key: string = created.body.key
  // B and C have just looked the key up: without a signal they would trust it for 5 s more
  const cachedAt = Date.now()
  for (const h of [B, C]) assert.equal((await h.api('/v1/users/nobody/devices', { apiKey: key })).status, 200)
  const started = Date.now()
  const revoked = await A.api(`/v1/api-keys/${created.body.id}`,
    { method: 'DELETE', headers: { authorization: basic } })
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body))
  // when the first request that was refused was sent (its own round trip is not the signal's time)
  const refused = async (h: TestHerald): Promise<number | undefined> => {
    const sentAt = Date.now()
    return (await h.api('/v1/users/nobody/devices', { apiKey: key })).status === 401 ? sentAt : undefined
  }
  const refusedAt = await Promise.all([B, C].map(h => waitUntil('the key refused', () => refused(h), 5_000, 10)))
  t.diagnostic(`revoked through A to refused on B, C: ${refusedAt.map(at => at - started).join(', ')} ms`)
  for (const at of refusedAt) {
    assert.ok(at - cachedAt < 5_000, 'refused while the cache still trusted the key: the signal emptied it')
    assert.ok(at - started < 1_000, `the revoked key still worked ${at - started} ms after the revocation`)
  }
  // the test key still works everywhere: the caches were emptied, not poisoned
  for (const h of nodes) assert.equal((await h.api('/v1/users/nobody/devices')).status, 200)
})

test('control anywhere: a token issued by A ends the connection on B when it expires', async (t) => {
  const [A, B] = nodes
  const res = await A.api('/v1/tokens', { body: { user: 'ctl-exp', ttl: 2 } })
  assert.equal(res.status, 201)
  const expiresAt = Date.parse(res.body.expiresAt)
  const d = await connectDevice(B.wsUrl, { clientId: 'ctl-exp-phone', password: res.body.token, clean: false })
  devices.push(d)
  const closed = closedWithin(d)
  const ms = await closed(expiresAt, 10_000)
  t.diagnostic(`closed ${ms} ms after the token's expiry`)
  assert.ok(ms > -50 && ms < 1_000, `the connection on B closed ${ms} ms from the token's expiry`)
  await waitOffline(A, 'ctl-exp', 'ctl-exp-phone')
})

test('session takeover: the client id connecting to C while on B closes B\'s connection within 1 s; the queue ' +
  'continues on C in accept order', async (t) => {
  const [A, B, C] = nodes
  const user = 'roamer'
  const clientId = 'roamer-phone'
  const token = await A.token(user)
  const old = await on(B, user, clientId)
  // a slow device: 60 ms before each PUBACK (and mqtt.js reads the next packet only after it), so the
  // takeover finds messages written to B's connection and not acknowledged
  const client = old.client as unknown as { handleMessage: (packet: unknown, callback: () => void) => void }
  client.handleMessage = (_packet, callback) => { setTimeout(callback, 60) }
  const oldClosed = closedWithin(old)

  const TOTAL = 120
  const TAKEOVER_AT = 50
  const accepted: string[] = []
  let fresh: TestDevice | undefined
  let takeover: Promise<void> | undefined
  let closeMs = 0
  let connectMs = 0
  // two senders, one request at a time each: through A, which never holds the device, and through
  // C, which holds it after the takeover
  const senders = [A, C]
  let k = 0
  const lane = async (): Promise<void> => {
    while (k < TOTAL) {
      const i = k++
      accepted.push((await send(senders[i % senders.length], { to: { user }, title: `m${i}`, data: { i } })).id)
      if (accepted.length !== TAKEOVER_AT) continue
      takeover = (async () => {
        const started = Date.now()
        fresh = await connectDevice(C.wsUrl, { clientId, password: token, clean: false })
        devices.push(fresh)
        const connackAt = Date.now()
        connectMs = connackAt - started
        closeMs = await oldClosed(connackAt, 5_000)
      })()
    }
  }
  await Promise.all([lane(), lane()])
  await takeover
  t.diagnostic(`takeover: CONNACK on C after ${connectMs} ms, B's connection closed ${closeMs} ms after it`)
  assert.ok(closeMs < 1_000, `the older connection on B closed ${closeMs} ms after the new one on C was accepted`)
  assert.equal(await connectedNode(clientId), C.herald.nodeId)
  const received = await waitUntil('every accepted message received on B or C', async () => {
    const have = new Set([...ids(old), ...ids(fresh!)])
    return accepted.every(id => have.has(id)) ? have : undefined
  }, 20_000).catch(async err => {
    const have = new Set([...ids(old), ...ids(fresh!)])
    const missing = accepted.filter(id => !have.has(id))
    const { rows } = await db.pool.query('select seq, message_id, status, sent_at from deliveries ' +
      'where message_id = any($1::uuid[]) order by seq', [missing])
    const seqs = await deliverySeqs(db.pool, clientId)
    const seqsOf = (d: TestDevice): string => d.received.map(r => seqs.get(r.payload.id)).join(' ')
    assert.fail(`${(err as Error).message}: ${missing.length} missing: ${JSON.stringify(rows)}\n` +
      `seqs on B: ${seqsOf(old)}\nseqs on C: ${seqsOf(fresh!)}`)
  })
  assert.equal(received.size, TOTAL)
  await new Promise(resolve => setTimeout(resolve, 200)) // duplicates still on their way
  const seqs = await deliverySeqs(db.pool, clientId)
  assertSeqOrder(seqs, [old.received, fresh!.received], ['on B', 'on C'])
  const onB = new Set(ids(old))
  const twice = ids(fresh!).filter(id => onB.has(id))
  t.diagnostic(`received ${old.received.length} on B, ${fresh!.received.length} on C, ${twice.length} on both`)
  // at-least-once: C sends again only messages B had written to the older connection, none twice
  // on one connection (assertSeqOrder), and what C sends again is a prefix of what it sends
  assert.deepEqual(ids(fresh!).slice(0, twice.length), twice, 'C first sends again what B had written, then the rest')
  for (const id of accepted) {
    await waitUntil(`${id} delivered`, async () => (await getMessage(A, id)).deliveries[0].status === 'delivered')
  }
  await fresh!.close()
})

test('a device hopping between B and C while messages stream gets every one, in accept order', async (t) => {
  const [A, B, C] = nodes
  const user = 'hopper'
  const clientId = 'hopper-phone'
  const token = await A.token(user)
  const first = await on(B, user, clientId)
  const connections: TestDevice[] = [first]
  /** every arrival on any connection, in the order they happened */
  const all: Array<{ payload: { id: string } }> = []
  const record = (d: TestDevice): void => { d.client.on('message', () => { all.push(d.received.at(-1)!) }) }
  record(first)

  // three senders, one request at a time each, through A, B and C (the holders among them)
  const senders = nodes
  const accepted: string[] = []
  const sending = { on: true }
  let k = 0
  const lane = async (): Promise<void> => {
    while (sending.on) {
      const sent = await send(senders[k % senders.length], { to: { user }, title: `hop ${k++}` })
      accepted.push(sent.id)
    }
  }
  const lanes = [lane(), lane(), lane()]

  const HOPS = 8
  let takeovers = 0
  try {
    for (let hop = 1; hop <= HOPS; hop++) {
      const current = connections.at(-1)!
      // a few messages on this connection first
      const seen = current.received.length
      await waitUntil('messages on this connection', async () => current.received.length >= seen + 3, 5_000, 5)
      // odd hops connect before the old connection is gone (a takeover), even hops after it closed
      const takeover = hop % 2 === 1
      const closed = closedWithin(current)
      if (!takeover) await current.close()
      const next = await connectDevice([B, C][hop % 2].wsUrl, { clientId, password: token, clean: false })
      const connackAt = Date.now()
      devices.push(next)
      record(next)
      connections.push(next)
      if (takeover) {
        const ms = await closed(connackAt, 5_000).catch(async err => assert.fail(
          `hop ${hop}: ${(err as Error).message}; the database has the device on ` +
          nameOf(await connectedNode(clientId))))
        assert.ok(ms < 1_000, `hop ${hop}: the older connection closed ${ms} ms after the takeover`)
        takeovers++
      }
    }
  } finally {
    sending.on = false
    await Promise.all(lanes)
  }
  const last = connections.at(-1)!
  await waitUntil('every accepted message received', async () => {
    const have = new Set(all.map(r => r.payload.id))
    return accepted.every(id => have.has(id))
  }, 20_000).catch(() => {
    const have = new Set(all.map(r => r.payload.id))
    assert.fail(`${accepted.filter(id => !have.has(id)).length} of ${accepted.length} accepted never arrived`)
  })
  await new Promise(resolve => setTimeout(resolve, 200))
  const seqs = await deliverySeqs(db.pool, clientId)
  assertSeqOrder(seqs, connections.map(c => c.received), connections.map((_, i) => `connection ${i}`), all)
  const duplicates = all.length - new Set(all.map(r => r.payload.id)).size
  t.diagnostic(`${accepted.length} accepted over ${HOPS} hops (${takeovers} takeovers), ${duplicates} received twice`)
  assert.ok(last.client.connected)
  await last.close()
})

test('a process whose LISTEN connection is cut reads its devices\' queues again once it is back', async (t) => {
  const [A, B] = nodes
  const d = await on(B, 'cut', 'cut-phone')
  const restore = await cutListener(B)
  let sent: { id: string }
  try {
    sent = await send(A, { to: { user: 'cut' }, title: 'while cut' })
  } finally {
    t.diagnostic(`B's listener was cut ${await restore()} times`)
  }
  await arrivals(d, [sent.id], 5_000, 'the message accepted while B\'s listener was cut')
  // and B is told of a send now as before
  const next = await send(A, { to: { user: 'cut' }, title: 'after' })
  await arrivals(d, [next.id], 5_000, 'a message after B listens again')
  assert.ok(d.client.connected, 'the device stayed connected')
  await d.close()
})

test('a send through the device\'s own process does not hide an earlier one through another process', async (t) => {
  const [A, , C] = nodes
  const user = 'gap'
  const d = await on(C, user, 'gap-phone')
  // C does not hear of A's send for a moment (as when a NOTIFY is slow to arrive), and meanwhile
  // a send through C itself reaches C's channel at once
  const restore = await cutListener(C)
  let first: { id: string }
  let second: { id: string }
  try {
    first = await send(A, { to: { user }, title: 'through A' })
    second = await send(C, { to: { user }, title: 'through C' })
  } finally {
    await restore()
  }
  // C's channel learns from the accept through C that an earlier row is unread (NewDelivery.after)
  // and reads its queue, rather than skip ahead and leave A's message queued until a reconnect
  await arrivals(d, [first.id, second.id], 5_000, 'both, on the same connection')
  assert.deepEqual(ids(d), [first.id, second.id], 'both reach the connected device, in accept order')
  assert.ok(d.client.connected, 'without a reconnect')
  await d.close()
})

test('a device that connects again to its process before its old connection is gone stays shown connected, ' +
  'served live, and taken over from another process', async (t) => {
  const [A, B, C] = nodes
  const user = 'back'
  const clientId = 'back-phone'
  const token = await A.token(user)
  const found: Record<string, unknown> = {}
  // a phone on a flaky network connects again while the server still holds its old connection
  const old = await on(B, user, clientId)
  const oldClosed = closedWithin(old)
  const again = await connectDevice(B.wsUrl, { clientId, password: token, clean: false })
  devices.push(again)
  await oldClosed(Date.now(), 5_000)
  await new Promise(resolve => setTimeout(resolve, 300)) // the old connection's end is recorded by now
  found.shownOnline = (await listDevices(C, user)).find(d => d.deviceId === clientId)?.online
  const sent = await send(A, { to: { user }, title: 'through A' })
  found.servedLive = await arrivals(again, [sent.id], 1_000, 'through A').then(() => true, () => false)
  // then it connects to C: the connection on B must close
  const closed = closedWithin(again)
  const onC = await connectDevice(C.wsUrl, { clientId, password: token, clean: false })
  devices.push(onC)
  found.takenOver = await closed(Date.now(), 1_000).then(() => true, () => false)
  found.bothOpen = again.client.connected && onC.client.connected
  t.diagnostic(JSON.stringify(found))
  assert.deepEqual(found, { shownOnline: true, servedLive: true, takenOver: true, bothOpen: false })
})
