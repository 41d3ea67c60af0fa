// CONNECT as MQTT 3.1.1 says it: every legal keep-alive accepted, dead WebSocket peers found by the
// server's pings whatever keep-alive they asked for, and the right CONNACK code (or a close with
// none) for each malformed CONNECT. Each connection uses a valid token, so a refusal is the rule
// under test and not the credentials.
import { test, after, before, describe } from 'node:test'
import assert from 'node:assert/strict'
import mqttPacket, { type IConnackPacket } from 'mqtt-packet'
import { startTestHerald, connectDevice, type TestHerald, type TestDevice } from './helpers/herald.js'
import { waitOffline, listDevices } from './helpers/delivery.js'
import { connectBytes, openRawDevice, type ConnectFields } from './helpers/mqttBytes.js'

/** The device gets a push sent now, and is still connected. */
async function stillServed (h: TestHerald, device: TestDevice, user: string): Promise<void> {
  const before = device.received.length
  const sent = await h.api('/v1/messages', { body: { to: { user }, title: 'still served' } })
  assert.equal(sent.status, 202, JSON.stringify(sent.body))
  const received = await device.waitFor(before + 1)
  assert.equal(received.at(-1)!.payload.id, sent.body.id)
  assert.ok(device.client.connected)
}

/** Sends `bytes` as the first thing on a new connection; returns every byte the server answered before it closed. */
async function answerBeforeClose (h: TestHerald, bytes: Buffer): Promise<string> {
  const raw = await openRawDevice(h.wsUrl)
  raw.ws.send(bytes)
  await raw.closed()
  return raw.packets.map(p => p.cmd === 'connack' ? `connack ${(p as IConnackPacket).returnCode}` : p.cmd).join(', ')
}

describe('keep-alive', () => {
  let h: TestHerald
  before(async () => { h = await startTestHerald() })
  after(async () => { await h.stop() })

  test('keep-alive 0 (off) [MQTT-3.1.2-10] and 65535 s (the largest) are accepted, and get pushes', async () => {
    for (const [keepalive, clientId] of [[0, 'ka-off'], [65_535, 'ka-max']] as const) {
      const device = await connectDevice(h.wsUrl, { clientId, password: await h.token('kim'), keepalive })
      try {
        await stillServed(h, device, 'kim')
      } finally {
        await device.close()
      }
    }
  })
})

describe('WebSocket pings find dead peers', () => {
  const PING_MS = 150
  let h: TestHerald
  before(async () => { h = await startTestHerald({ deps: { wsPingIntervalMs: PING_MS } }) })
  after(async () => { await h.stop() })

  test('a keep-alive 0 peer that stops answering pings is dropped and shown offline; others stay', async () => {
    const live = await connectDevice(h.wsUrl, { clientId: 'ping-live', password: await h.token('lena'), keepalive: 0 })
    const silent = await openRawDevice(h.wsUrl, { autoPong: false })
    const token = await h.token('sid')
    silent.ws.send(
      connectBytes({ clientId: 'ping-silent', clean: false, keepalive: 0, username: 'device', password: token })
    )
    assert.equal((await silent.next('connack') as IConnackPacket).returnCode, 0)
    assert.equal((await listDevices(h, 'sid')).find(d => d.deviceId === 'ping-silent')?.online, true)
    // a witness that answers pings, to count the server's rounds
    const counter = await openRawDevice(h.wsUrl)
    try {
      await silent.closed(20 * PING_MS)
      assert.ok(silent.pings >= 1, 'dropped before it was ever pinged')
      await waitOffline(h, 'sid', 'ping-silent')

      // several more rounds: the devices that answer are left alone
      await counter.waitForPings(counter.pings + 3, 20 * PING_MS)
      assert.equal(counter.ws.readyState, counter.ws.OPEN)
      await stillServed(h, live, 'lena')
    } finally {
      counter.ws.terminate()
      silent.ws.terminate()
      await live.close()
    }
  })
})

describe('CONNECT edge cases', () => {
  let h: TestHerald
  let token: string
  /** a CONNECT with cora's valid token */
  const withToken = (fields: ConnectFields): Buffer => connectBytes({ username: 'device', password: token, ...fields })
  before(async () => {
    h = await startTestHerald()
    token = await h.token('cora')
  })
  after(async () => { await h.stop() })

  test('an unsupported protocol level gets CONNACK 1, then the connection is closed [MQTT-3.1.2-2]', async () => {
    // 5 is parsed (MQTT 5), the others are not; 0x89 is level 9 with mqtt-packet's bridge bit
    for (const level of [0, 1, 2, 5, 6, 9, 0x7f, 0x89, 0xff]) {
      const bytes = level === 5
        ? mqttPacket.generate({
          cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'level-5', clean: true, keepalive: 60,
          username: 'device', password: Buffer.from(token)
        })
        : withToken({ level, clientId: `level-${level}` })
      assert.equal(await answerBeforeClose(h, bytes), 'connack 1', `level ${level}`)
    }
  })

  test('an empty client id: CONNACK 2 for a persistent session [MQTT-3.1.3-8] and for MQTT 3.1', async () => {
    assert.equal(await answerBeforeClose(h, withToken({ clientId: '', clean: false })), 'connack 2')
    const mqtt31 = withToken({ protocolName: 'MQIsdp', level: 3, clientId: '', clean: true })
    assert.equal(await answerBeforeClose(h, mqtt31), 'connack 2')
  })

  test('an empty client id with a clean session gets an id from the server and its pushes [MQTT-3.1.3-6]', async () => {
    const device = await connectDevice(h.wsUrl, { clientId: '', clean: true, password: token })
    try {
      await device.client.subscribeAsync('users/cora/inbox', { qos: 1 })
      await stillServed(h, device, 'cora')
      const devices = await listDevices(h, 'cora')
      assert.ok(devices.some(d => d.deviceId.length > 0 && d.online), JSON.stringify(devices))
    } finally {
      await device.close()
    }
  })

  test('protocol violations close the connection with no CONNACK', async () => {
    const cases: Array<[string, Buffer]> = [
      ['[MQTT-3.1.2-3] reserved connect flag set', withToken({ flags: 0xc3 })],
      ['[MQTT-2.2.2-2] CONNECT header flags not 0', withToken({ header: 0x12 })],
      ['[MQTT-3.1.2-14] will QoS 3', withToken({ will: { topic: 'a', payload: Buffer.from('x'), qos: 3 } })],
      ['[MQTT-3.1.2-15] will retain without a will', withToken({ flags: 0xe2 })],
      ['[MQTT-3.1.2-22] password without a user name', connectBytes({ password: token })],
      ['[MQTT-1.5.3-2] U+0000 in the client id', withToken({ clientId: 'nul\u0000id' })],
      ['[MQTT-1.5.3-2] U+0000 in the user name', withToken({ username: 'dev\u0000ice' })],
      ['[MQTT-3.1.0-2] a second CONNECT, in the same frame', Buffer.concat([withToken({}), withToken({})])]
    ]
    for (const [rule, bytes] of cases) {
      const answer = await answerBeforeClose(h, bytes)
      // a second CONNECT comes after the first was accepted; nothing else may be accepted at all
      assert.equal(answer, rule.includes('second') ? 'connack 0' : '', rule)
    }
  })
})
