// Several Herald processes on one database, as real child processes (`node --import tsx
// server/main.ts`) so that they can be stopped and killed: a rolling restart under load (SIGTERM
// one process at a time), SIGKILL of the process that runs the cluster's chores while messages
// stream to devices on it, and the chores moving to another process. Devices are real mqtt.js
// clients that connect to another process when theirs goes away; a sender retries a 503 (or a
// request that got no answer) on another process with the same Idempotency-Key. Nothing that got
// a 202 may be lost, and each device gets its messages in accept order (dedupe by id allowed).
import { test, before, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { connectDevice, type TestDevice } from './helpers/herald.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { killAllServers, serverEnv, spawnServer, type ServerProcess } from './helpers/process.js'
import { waitUntil } from './helpers/delivery.js'
import {
  assertSeqOrder, choresHolders, deliverySeqs, RoamingDevice, watchChores
} from './helpers/cluster.js'

let db: TestDatabase
/** the processes taking work now: devices connect to them, the sender sends to them */
let up: ServerProcess[] = []
const roaming: RoamingDevice[] = []
const plain: TestDevice[] = []

before(async () => {
  db = await createTestDatabase()
  up = await Promise.all([0, 1, 2].map(() => start()))
})

after(async () => {
  for (const d of roaming) d.stop()
  for (const d of plain) d.client.end(true)
  await killAllServers()
  await db.drop()
})

function start (): Promise<ServerProcess> {
  return spawnServer({ env: serverEnv(db.url), readyTimeoutMs: 60_000 })
}

async function nodeIdOf (p: ServerProcess): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    'select id from nodes where pid = $1 order by started_at desc limit 1', [p.pid])
  assert.ok(rows[0], `no nodes row for pid ${p.pid}`)
  return rows[0].id
}

let turn = 0
/** A process taking work, in turn, other than `not` while there is another. */
function pickUp (not?: string): ServerProcess {
  const others = up.filter(p => p.wsUrl !== not && p.url !== not)
  const from = others.length > 0 ? others : up
  assert.ok(from.length > 0, 'no process is up')
  return from[turn++ % from.length]
}

interface Accepted { id: string, lane: number, user: string }

/**
 * Senders, `lanes` of them, each sending one request at a time (so within a lane, a message is
 * sent only once the one before was committed) until `stop()`; each request goes to the next
 * process `targets` names and is retried on another, with the same Idempotency-Key, after a 503
 * or when the request got no answer (the process went away).
 */
class Load {
  readonly accepted: Accepted[] = []
  /** HTTP statuses answered, and requests that got no answer by their error code */
  readonly statuses = new Map<number, number>()
  readonly unanswered = new Map<string, number>()
  #stopped = false
  #running: Promise<void>[] = []
  #waiters: Array<() => void> = []

  constructor (
    private readonly targets: () => ServerProcess[],
    private readonly userOf: (lane: number, n: number) => string
  ) {}

  start (lanes: number): void {
    this.#running = Array.from({ length: lanes }, (_, lane) => this.#lane(lane))
  }

  /** Resolves once `count` more messages have been accepted than now. */
  async more (count: number, timeoutMs = 30_000): Promise<void> {
    const target = this.accepted.length + count
    await waitUntil(`${count} more sends accepted`, async () => this.accepted.length >= target, timeoutMs, 10)
  }

  async stop (): Promise<void> {
    this.#stopped = true
    await Promise.all(this.#running)
  }

  async #lane (lane: number): Promise<void> {
    for (let n = 0; !this.#stopped; n++) {
      const user = this.userOf(lane, n)
      const body = { to: { user }, title: `lane ${lane} #${n}`, data: { lane, n } }
      this.accepted.push({ id: await this.#send(body, user), lane, user })
    }
  }

  async #send (body: unknown, user: string): Promise<string> {
    const key = randomUUID()
    let not: ServerProcess | undefined
    for (let attempt = 0; attempt < 100; attempt++) {
      const targets = this.targets()
      const others = targets.filter(p => p !== not)
      const from = others.length > 0 ? others : targets
      const server = from[turn++ % from.length]
      let res
      try {
        res = await server.api('/v1/messages', { body, headers: { 'idempotency-key': key } })
      } catch (err) {
        const cause = (err as { cause?: { code?: string, message?: string } }).cause
        const code = cause?.code ?? cause?.message ?? (err as Error).message
        this.unanswered.set(code, (this.unanswered.get(code) ?? 0) + 1)
        not = server
        await new Promise(resolve => setTimeout(resolve, 20))
        continue
      }
      this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1)
      if (res.status === 202) return res.body.id
      assert.equal(res.status, 503, `a send answered ${res.status}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body.code, 'shutting-down')
      not = server
    }
    throw new Error('a send found no process to take it in 100 attempts')
  }
}

/** Every device got every message accepted for its user, each connection and the first arrivals in accept order. */
async function assertAllDelivered (t: TestContext, devices: RoamingDevice[], load: Load): Promise<void> {
  for (const d of devices) {
    const mine = load.accepted.filter(a => a.user === d.user).map(a => a.id)
    assert.ok(mine.length > 0, `nothing was sent to ${d.user}`)
    await d.waitFor(mine, 30_000)
  }
  await new Promise(resolve => setTimeout(resolve, 300)) // duplicates still on their way
  let duplicates = 0
  for (const d of devices) {
    const seqOf = await deliverySeqs(db.pool, d.clientId)
    const byConnection = d.connections.map((_, i) => d.received.filter(r => r.connection === i))
    const names = d.connections.map((url, i) => `${d.clientId} connection ${i} (${url})`)
    assertSeqOrder(seqOf, byConnection, names, d.received)
    // and within each lane, in the order its 202s came back
    const firsts = [...new Map(d.received.map(r => [r.payload.id, r])).keys()]
    for (const lane of new Set(load.accepted.map(a => a.lane))) {
      const laneIds = load.accepted.filter(a => a.lane === lane && a.user === d.user).map(a => a.id)
      const laneSet = new Set(laneIds)
      assert.deepEqual(firsts.filter(id => laneSet.has(id)), laneIds,
        `${d.clientId}, lane ${lane}: in the order of its 202s`)
    }
    const ids = new Set(d.received.map(r => r.payload.id))
    const expected = new Set(load.accepted.filter(a => a.user === d.user).map(a => a.id))
    for (const id of ids) assert.ok(expected.has(id), `${d.clientId} got ${id}, which was not accepted for ${d.user}`)
    duplicates += d.received.length - ids.size
  }
  t.diagnostic(`${devices.length} devices got all ${load.accepted.length} accepted, ${duplicates} twice; ` +
    `connections per device: ${devices.map(d => d.connections.length).join(' ')}`)
}

const summary = (m: Map<unknown, number>): string => [...m].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'

test('rolling restart under load: each process in turn is replaced and SIGTERMed; the sender sees only 202 or ' +
  '503, devices move and get everything in order', async (t) => {
  const replacements = up.map(() => start())
  // no unhandled rejection while they are not awaited yet (the loop below awaits each)
  for (const r of replacements) r.catch(() => {})
  const DEVICES = 6
  const devices = Array.from({ length: DEVICES }, (_, i) => `roll-${i}`)
  const tokens = await Promise.all(devices.map(u => up[0].token(u)))
  const moving: RoamingDevice[] = []
  for (let i = 0; i < DEVICES; i++) {
    const d = new RoamingDevice(devices[i], `${devices[i]}-phone`, tokens[i], not => pickUp(not).wsUrl, 2)
    roaming.push(d)
    moving.push(d)
    await d.start(up[i % up.length].wsUrl)
  }
  // the sender keeps a stopping process in its rotation until it has exited: it sees its 503s
  let stopping: ServerProcess | undefined
  const LANES = 4
  const targets = (): ServerProcess[] => stopping ? [...up, stopping] : up
  const load = new Load(targets, (lane, n) => devices[(lane + n * LANES) % DEVICES])
  const chores = watchChores(db.pool)
  load.start(LANES)
  await load.more(40)

  const original = [...up]
  for (const [i, old] of original.entries()) {
    // a replacement joins (they were started together, at the beginning: starting a process is
    // most of the time here), and the old process is stopped
    const fresh = await replacements[i]
    up.push(fresh)
    // the load balancer stops sending devices there; the process is told to stop
    up = up.filter(p => p !== old)
    stopping = old
    const before = load.accepted.length
    const exit = await old.term(20_000)
    stopping = undefined
    t.diagnostic(`SIGTERM to exit: ${exit.ms} ms; ${load.accepted.length - before} accepted meanwhile`)
    assert.equal(exit.code, 0, `SIGTERM under load: ${JSON.stringify(exit)}\n${old.output().slice(-3_000)}`)
    assert.ok(exit.ms < 10_000, `SIGTERM took ${exit.ms} ms`)
    // every device is connected again, and the load goes on
    await waitUntil('every device connected to a process that is up', async () =>
      moving.every(d => d.client?.connected === true && up.some(p => p.wsUrl === d.url)), 20_000)
    await load.more(30)
  }
  await load.stop()
  t.diagnostic(`answers: ${summary(load.statuses)}; ` +
    `no answer (retried elsewhere, same key): ${summary(load.unanswered)}`)
  for (const status of load.statuses.keys()) assert.ok(status === 202 || status === 503, `the sender saw ${status}`)

  await assertAllDelivered(t, moving, load)
  const originalUrls = new Set(original.map(p => p.wsUrl))
  for (const d of moving) {
    assert.ok(d.connections.length >= 2, `${d.clientId} never moved`)
    assert.ok(!originalUrls.has(d.url!), `${d.clientId} is still on a process that stopped`)
  }
  // the chores moved with the restarts, never held by two processes at once, and one process holds them
  const { most, samples } = await chores()
  assert.ok(most <= 1, `${most} processes held the chores at once`)
  t.diagnostic(`chores holders sampled ${samples} times: never more than ${most}`)
  const upIds = await Promise.all(up.map(nodeIdOf))
  const holders = await waitUntil('one process to hold the chores', async () => {
    const h = await choresHolders(db.pool)
    return h.length === 1 ? h : undefined
  }, 10_000)
  assert.ok(upIds.includes(holders[0]), `the chores are held by ${holders[0]}, not one of ${upIds.join(', ')}`)
  for (const d of moving) d.stop()
})

test('SIGKILL of the process running the chores mid-stream: its devices move and get everything in order; ' +
  'another process takes the chores within seconds; it is marked gone', async (t) => {
  const holders = await waitUntil('one process to hold the chores', async () => {
    const h = await choresHolders(db.pool)
    return h.length === 1 ? h : undefined
  }, 10_000)
  const ids = await Promise.all(up.map(nodeIdOf))
  const victimAt = ids.indexOf(holders[0])
  assert.ok(victimAt >= 0, `the chores are held by ${holders[0]}, not by a process that is up (${ids.join(', ')})`)
  const victim = up[victimAt]
  const victimId = ids[victimAt]
  const survivors = up.filter(p => p !== victim)

  const DEVICES = 4
  const users = Array.from({ length: DEVICES }, (_, i) => `kill-${i}`)
  const tokens = await Promise.all(users.map(u => survivors[0].token(u)))
  const devices: RoamingDevice[] = []
  for (let i = 0; i < DEVICES; i++) {
    // slow PUBACKs: at the kill, messages are written and not acknowledged, and more are queued
    const d = new RoamingDevice(users[i], `${users[i]}-phone`, tokens[i], not => pickUp(not).wsUrl, 5)
    roaming.push(d)
    devices.push(d)
    await d.start(victim.wsUrl)
  }
  // and one that does not come back: the process' death is what shows it offline
  const lostToken = await survivors[0].token('kill-lost')
  const lost = await connectDevice(victim.wsUrl, { clientId: 'kill-lost-phone', password: lostToken, clean: false })
  plain.push(lost)
  await lost.client.subscribeAsync('users/kill-lost/inbox', { qos: 1 })
  const { rows: placed } = await db.pool.query<{ n: number }>(
    'select count(*)::int as n from devices where connected_node = $1', [victimId])
  assert.equal(placed[0].n, DEVICES + 1, 'every device is on the victim')

  // the sender also sends through the victim: a request it had in hand at the kill is retried elsewhere
  const load = new Load(() => up, (lane, n) => users[(lane + n * 2) % DEVICES])
  const chores = watchChores(db.pool)
  load.start(2)
  await load.more(120)
  const exit = await victim.kill9()
  const killedAt = Date.now()
  up = survivors
  assert.equal(exit.signal, 'SIGKILL')
  // the chores move to a survivor (each tries every 2 s)
  const moving = waitUntil('another process to take the chores', async () => {
    const h = await choresHolders(db.pool)
    return h.length === 1 && h[0] !== victimId ? { id: h[0], ms: Date.now() - killedAt } : undefined
  }, 15_000, 50)
  await load.more(120)
  await load.stop()
  t.diagnostic(`answers: ${summary(load.statuses)}; ` +
    `no answer (retried elsewhere, same key): ${summary(load.unanswered)}`)

  const moved = await moving
  t.diagnostic(`the chores moved ${moved.ms} ms after the kill`)
  assert.ok(ids.filter(id => id !== victimId).includes(moved.id))
  assert.ok(moved.ms < 5_000, `the chores moved ${moved.ms} ms after the kill`)
  const { most } = await chores()
  assert.ok(most <= 1, `${most} processes held the chores at once`)

  await assertAllDelivered(t, devices, load)
  for (const d of devices) {
    assert.ok(d.connections.length >= 2 && d.url !== victim.wsUrl, `${d.clientId} did not move off the killed process`)
  }

  // marked gone, and its devices offline, within the staleness window (30 s heartbeat; the
  // leader looks every 5 s, and sooner when the process' listener connection is gone)
  const goneMs = await waitUntil('the killed process marked gone', async () => {
    const { rows } = await db.pool.query<{ gone: boolean }>(
      'select gone_at is not null as gone from nodes where id = $1', [victimId])
    return rows[0]?.gone === true ? Date.now() - killedAt : undefined
  }, 45_000, 100)
  t.diagnostic(`marked gone ${goneMs} ms after the kill`)
  assert.ok(goneMs < 35_000 + 2_000, `marked gone ${goneMs} ms after the kill`)
  const shown = await survivors[0].api('/v1/users/kill-lost/devices')
  assert.equal(shown.status, 200)
  assert.equal(shown.body[0]?.online, false,
    `the device left on the killed process is shown offline: ${JSON.stringify(shown.body)}`)
  const { rows: left } = await db.pool.query<{ n: number }>(
    'select count(*)::int as n from devices where connected_node = $1', [victimId])
  assert.equal(left[0].n, 0)
  for (const d of devices) d.stop()
})
