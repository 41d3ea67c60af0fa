// CONNECT as MQTT 3.1.1 says it: every legal keep-alive accepted, a silent connection closed in
// the end whatever keep-alive it asked for, and the right CONNACK code (or a close with none) for
// each malformed CONNECT. Each connection uses a valid token, so a refusal is the rule
// under test and not the credentials.
import { test, after, before, describe } from 'node:test'
import assert from 'node:assert/strict'
import mqttPacket, { type IConnackPacket } from 'mqtt-packet'
import { startTestHerald, connectDevice, type TestHerald } from './helpers/herald.js'
import { listDevices, stillServed, waitOffline } from './helpers/delivery.js'
import { connectBytes, openRawDevice, type ConnectFields } from './helpers/mqttBytes.js'

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

describe('the longest keep-alive', () => {
  // lowered from 20 minutes (MAX_KEEPALIVE_S) so that the test takes seconds
  const MAX_KEEPALIVE_S = 2
  let h: TestHerald
  before(async () => { h = await startTestHerald({ deps: { maxKeepaliveSeconds: MAX_KEEPALIVE_S } }) })
  after(async () => { await h.stop() })

  test('a silent connection with keep-alive 0 or above the longest is closed after 1.5 times the longest', async () => {
    const live = await connectDevice(h.wsUrl, { clientId: 'idle-live', password: await h.token('lena'), keepalive: 1 })
    let pingsSent = 0
    const pinged = new Set<() => void>()
    live.client.on('packetsend', packet => {
      if (packet.cmd !== 'pingreq') return
      pingsSent++
      for (const check of pinged) check()
    })
    const token = await h.token('sid')
    const asked = [['idle-off', 0], ['idle-long', 65_535]] as const
    const silent = await Promise.all(asked.map(async ([clientId, keepalive]) => {
      const raw = await openRawDevice(h.wsUrl)
      const since = Date.now()
      raw.ws.send(connectBytes({ clientId, clean: false, keepalive, username: 'device', password: token }))
      assert.equal((await raw.next('connack') as IConnackPacket).returnCode, 0)
      return { raw, since, clientId }
    }))
    try {
      await Promise.all(silent.map(async ({ raw, since, clientId }) => {
        await raw.closed(MAX_KEEPALIVE_S * 1_500 + 3_000)
        const idleMs = Date.now() - since
        assert.ok(idleMs >= MAX_KEEPALIVE_S * 1_500 - 50, `${clientId} was closed after ${idleMs} ms`)
      }))
      for (const { clientId } of silent) await waitOffline(h, 'sid', clientId)
      // connected before them, within the limit and sending a PINGREQ every second: left alone
      const enough = pingsSent + 2
      await new Promise<void>(resolve => {
        const check = (): void => { if (pingsSent >= enough) resolve() }
        pinged.add(check)
      })
      await stillServed(h, live, 'lena')
    } finally {
      for (const { raw } of silent) raw.ws.terminate()
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
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 5,
          clientId: 'level-5',
          clean: true,
          keepalive: 60,
          username: 'device',
          password: Buffer.from(token)
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
