// The admin's Nodes page API (GET /admin/api/nodes) with two Herald processes on one database:
// each is listed with its version, host, pid and connections, exactly one is the chores' leader,
// and one that stops is shown gone while the other takes over the chores.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { HERALD_VERSION } from '../server/version.js'
import type { Json, NodeSummary } from '../server/wire.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { ADMIN_PASSWORD, connectDevice, startTestHerald, type TestDevice, type TestHerald } from './helpers/herald.js'
import { waitUntil } from './helpers/delivery.js'

let db: TestDatabase
let a: TestHerald
let b: TestHerald
const devices: TestDevice[] = []

before(async () => {
  db = await createTestDatabase()
  a = await startTestHerald({ db })
  b = await startTestHerald({ db })
})

after(async () => {
  for (const d of devices) await d.close().catch(() => {})
  await a?.stop()
  await b?.stop()
  await db?.drop()
})

async function login (h: TestHerald): Promise<string> {
  const res = await fetch(`${h.url}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'admin', password: ADMIN_PASSWORD })
  })
  assert.equal(res.status, 200, await res.clone().text())
  return res.headers.get('set-cookie')!.split(';')[0]
}

async function get (h: TestHerald, path: string, cookie?: string): Promise<{ status: number, body: any }> {
  const res = await fetch(h.url + path, { headers: cookie ? { cookie } : {} })
  return { status: res.status, body: await res.json() }
}

type Node = Json<NodeSummary>

const byId = (nodes: Node[], id: string): Node => {
  const node = nodes.find(n => n.id === id)
  assert.ok(node, `${id} is listed: ${JSON.stringify(nodes)}`)
  return node
}

test('without the session the list is refused', async () => {
  assert.equal((await get(a, '/admin/api/nodes')).status, 401)
})

test('both processes are listed, by whichever serves the page, with version, host, pid and connections', async () => {
  // the session lives in the database: one login serves both processes
  const cookie = await login(a)
  const fromA = await get(a, '/admin/api/nodes', cookie)
  assert.equal(fromA.status, 200)
  assert.equal(fromA.body.servedBy, a.herald.nodeId)
  assert.ok(Math.abs(Date.parse(fromA.body.at) - Date.now()) < 60_000, 'the database time of the answer')
  const fromB = await get(b, '/admin/api/nodes', cookie)
  assert.equal(fromB.body.servedBy, b.herald.nodeId)
  assert.deepEqual(fromB.body.nodes.map((n: Node) => n.id).sort(), fromA.body.nodes.map((n: Node) => n.id).sort())

  const ids = [a.herald.nodeId, b.herald.nodeId]
  assert.deepEqual(fromA.body.nodes.map((n: Node) => n.id).sort(), [...ids].sort())
  for (const id of ids) {
    const node = byId(fromA.body.nodes, id)
    assert.equal(node.version, HERALD_VERSION)
    assert.equal(node.hostname, hostname())
    assert.equal(node.pid, process.pid, 'both run in this test process')
    assert.equal(node.goneAt, null)
    assert.ok(Date.parse(node.startedAt) <= Date.parse(node.heartbeatAt))
  }

  // a device on b: b's next heartbeat (every 5 s) counts it, a's still says none
  const phone = await connectDevice(b.wsUrl, { clientId: 'nodes-phone', password: await b.token('nadia') })
  devices.push(phone)
  const nodes = await waitUntil('b to report its connection', async () => {
    const { body } = await get(a, '/admin/api/nodes', cookie)
    return byId(body.nodes, b.herald.nodeId).connections === 1 && body.nodes as Node[]
  }, 15_000, 250)
  assert.equal(byId(nodes, a.herald.nodeId).connections, 0)

  const overview = await get(a, '/admin/api/overview', cookie)
  assert.equal(overview.body.nodesRunning, 2)
})

test('exactly one is the leader; a stopped one is shown gone and the other takes over the chores', async () => {
  const cookie = await login(a)
  const leaders = async (h: TestHerald): Promise<Node[]> =>
    (await get(h, '/admin/api/nodes', cookie)).body.nodes.filter((n: Node) => n.leader)
  // the first to start took the lock at once; the other tries every 2 s and fails
  const [leader] = await waitUntil('a leader', async () => { const l = await leaders(a); return l.length > 0 && l })
  assert.equal((await leaders(a)).length, 1)
  assert.equal((await leaders(b)).length, 1)

  const [stopped, survivor] = leader.id === a.herald.nodeId ? [a, b] : [b, a]
  await stopped.stop()
  const nodes = await waitUntil('the survivor to take over the chores', async () => {
    const { body } = await get(survivor, '/admin/api/nodes', cookie)
    return byId(body.nodes, survivor.herald.nodeId).leader && body.nodes as Node[]
  }, 10_000, 100)
  const gone = byId(nodes, stopped.herald.nodeId)
  assert.notEqual(gone.goneAt, null, 'a stopped node is marked gone, not forgotten')
  assert.equal(gone.leader, false)
  assert.equal(nodes.filter(n => n.leader).length, 1)
  assert.deepEqual(nodes.map(n => n.id), [survivor.herald.nodeId, stopped.herald.nodeId], 'running ones first')

  const overview = await get(survivor, '/admin/api/overview', cookie)
  assert.equal(overview.body.nodesRunning, 1)
})
