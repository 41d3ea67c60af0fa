// A device that stops reading its connection costs the server a bounded amount of memory however
// long its queue grows, is disconnected when it makes no progress, keeps its durable queue, and
// slows no other device.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import mqttPacket from 'mqtt-packet'
import { WebSocket } from 'ws'
import { createTestDatabase } from './helpers/db.js'
import { killAllServers, serverEnv, spawnServer, type ServerProcess } from './helpers/process.js'
import { connectDevice, type TestDevice } from './helpers/herald.js'
import { waitUntil } from './helpers/delivery.js'

after(killAllServers)

/**
 * A device that connects with a persistent session, subscribes, and then stops reading its socket
 * (the kernel's buffers fill and the server's writes back up), as a frozen app or a hostile
 * client would. `closed` resolves when the server drops the connection.
 */
async function stalledDevice (wsUrl: string, clientId: string, user: string, token: string): Promise<{ closed: Promise<void>, end: () => void }> {
  const ws = new WebSocket(wsUrl, 'mqtt')
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const acks = new Map<string, (packet: mqttPacket.Packet) => void>()
  parser.on('packet', packet => acks.get(packet.cmd)?.(packet))
  ws.on('message', data => parser.parse(data as Buffer))
  const expect = (cmd: string): Promise<mqttPacket.Packet> => new Promise(resolve => acks.set(cmd, resolve))
  const connack = expect('connack')
  ws.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 0, username: 'device', password: Buffer.from(token) }))
  assert.equal((await connack as mqttPacket.IConnackPacket).returnCode, 0)
  const suback = expect('suback')
  ws.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `users/${user}/inbox`, qos: 1 }] }))
  await suback
  const closed = new Promise<void>(resolve => ws.once('close', () => resolve()))
  // stop reading: nothing more is taken from the socket, so nothing is acknowledged either
  const socket = (ws as unknown as { _socket: { pause: () => void } })._socket
  socket.pause()
  ws.removeAllListeners('message')
  return { closed, end: () => ws.terminate() }
}

async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024
}

/** 3 KB of text per message, as in the report. */
const BODY = 'x'.repeat(3_000)
const BATCH = 500

async function sendMany (server: ServerProcess, user: string, count: number): Promise<void> {
  for (let sent = 0; sent < count; sent += BATCH) {
    const messages = Array.from({ length: Math.min(BATCH, count - sent) }, (_, i) => ({ to: { user }, title: `#${sent + i}`, body: BODY }))
    const res = await server.api('/v1/messages/batch', { body: { messages } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
  }
}

test('40,000 messages of 3 KB to a device that stopped reading: server memory stays bounded, other devices are served', async t => {
  const db = await createTestDatabase()
  // the stall limit is long here: memory must be bounded while the device is still connected
  const server = await spawnServer({ env: serverEnv(db.url, { STALLED_DEVICE_TIMEOUT_MS: '600000', LOG_LEVEL: 'warn' }) })
  const healthy: TestDevice = await connectDevice(server.wsUrl, { clientId: 'hal-phone', password: await server.token('hal') })
  await healthy.client.subscribeAsync('users/hal/inbox', { qos: 1 })
  const stalled = await stalledDevice(server.wsUrl, 'sid-phone', 'sid', await server.token('sid'))
  try {
    // warm up: pools, prepared statements and JIT, so the figure below is what the backlog costs
    await sendMany(server, 'sid', 2_000)
    const before = await rssMiB(server.pid)
    const TOTAL = 40_000
    await sendMany(server, 'sid', TOTAL - 2_000)
    // the healthy device is served at once, behind the stalled one's whole backlog
    const res = await server.api('/v1/messages', { body: { to: { user: 'hal' }, title: 'still here' } })
    assert.equal(res.status, 202)
    await healthy.waitFor(1, 5_000)
    const grown = await rssMiB(server.pid) - before
    t.diagnostic(`server RSS grew by ${grown.toFixed(1)} MiB (from ${before.toFixed(1)} MiB) with ${TOTAL} messages queued for a stalled device`)
    // before the fix the channel held every offered message: +283 MB for 40,000
    assert.ok(grown < 64, `server RSS grew by ${grown.toFixed(1)} MiB`)
    const pending = await server.api('/v1/users/sid/devices')
    assert.equal(pending.body[0].pending, TOTAL, 'every message is still queued for the stalled device, in Postgres')
  } finally {
    stalled.end()
    await healthy.close()
    await server.term()
    await db.drop()
  }
})

test('a device that makes no progress is disconnected after STALLED_DEVICE_TIMEOUT_MS and gets everything on its next connection', async () => {
  const db = await createTestDatabase()
  const server = await spawnServer({ env: serverEnv(db.url, { STALLED_DEVICE_TIMEOUT_MS: '1000' }) })
  try {
    const stalled = await stalledDevice(server.wsUrl, 'sam-phone', 'sam', await server.token('sam'))
    const startedAt = Date.now()
    await sendMany(server, 'sam', 1_000)
    await stalled.closed
    const afterMs = Date.now() - startedAt
    assert.ok(afterMs < 10_000, `disconnected after ${afterMs} ms`)
    const metrics = await server.api('/metrics', { headers: { authorization: `Basic ${Buffer.from('admin:test-admin-password').toString('base64')}` } })
    assert.match(String(metrics.body), /herald_device_stalled_disconnects_total 1\b/)

    const phone = await connectDevice(server.wsUrl, { clientId: 'sam-phone', password: await server.token('sam') })
    try {
      const received = await phone.waitFor(1_000, 20_000)
      assert.deepEqual(received.map(r => r.payload.title), Array.from({ length: 1_000 }, (_, i) => `#${i}`), 'all of it, in order')
      await waitUntil('the queue to be empty', async () => (await server.api('/v1/users/sam/devices')).body[0].pending === 0)
    } finally {
      await phone.close()
    }
  } finally {
    await server.term()
    await db.drop()
  }
})
