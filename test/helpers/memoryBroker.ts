// Herald as server/app.ts builds it (createHerald), with devices that speak raw MQTT to it over an
// in-memory duplexPair (HeraldService.handleMqtt), as aedes' own test/helper.js does: no WebSocket,
// and the test sees every packet and decides when each PUBACK goes, so the delivery rules are
// checked in milliseconds. Sends, revokes and statuses go through the REST API, as a backend's do.
import { duplexPair, type Duplex } from 'node:stream'
import assert from 'node:assert/strict'
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet'
import { parseConfig } from '../../server/config.js'
import { createLogger } from '../../server/log.js'
import { createHerald, listen, type Herald } from '../../server/app.js'
import { ADMIN_PASSWORD, API_KEY, JWT_SECRET, apiClient, type ApiCall } from './herald.js'
import type { TestDatabase } from './db.js'

/** How long a test waits for a packet or an event before it fails (not a pause: waits end on the event). */
export const WAIT_MS = 5_000

export interface MemoryHerald {
  herald: Herald
  api: ApiCall
  /** POST /v1/messages to `user`; resolves with the message id once committed (202) */
  send: (user: string, fields?: Record<string, unknown>) => Promise<string>
  /** POST /v1/messages/batch: `count` messages to `user`, committed together in this order; their ids */
  sendBatch: (user: string, count: number, fields?: (i: number) => Record<string, unknown>) => Promise<string[]>
  /** the delivery status of each message for `deviceId`, from GET /v1/messages/{id} */
  statuses: (messageIds: string[], deviceId: string) => Promise<string[]>
  connect: (user: string, clientId: string, opts?: { clean?: boolean }) => Promise<MemoryDevice>
  stop: () => Promise<void>
}

export interface MemoryDevice {
  clientId: string
  /** every PUBLISH received on this connection, in order */
  publishes: IPublishPacket[]
  /** resolves once `count` PUBLISHes in all have arrived on this connection */
  waitForPublishes: (count: number) => Promise<IPublishPacket[]>
  puback: (packet: IPublishPacket) => void
  /** from now on every PUBLISH is acknowledged as it arrives (those received so far too) */
  ackEverything: () => void
  /** the connection drops (no DISCONNECT, as when a phone loses its network); resolves once the server's end closed */
  drop: () => Promise<void>
}

/** The JSON payload of a push: what the app reads. */
export const pushOf = (p: IPublishPacket): { id: string, title?: string } => JSON.parse(p.payload.toString())

/** Herald on `db` (already migrated, shared by a file's tests), devices in memory; `env` overrides configuration. */
export async function startMemoryHerald (db: TestDatabase, env: Record<string, string> = {}): Promise<MemoryHerald> {
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    JWT_SECRET,
    API_KEY,
    ADMIN_PASSWORD,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env
  })
  const service = await createHerald(config, { log: createLogger(config.logLevel), pool: db.pool })
  const herald = await listen(service, config)
  const { api, token } = apiClient(() => herald.url)

  const send = async (user: string, fields: Record<string, unknown> = {}): Promise<string> => {
    const res = await api('/v1/messages', { body: { to: { user }, title: 'push', ...fields } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    return res.body.id
  }
  const sendBatch = async (user: string, count: number, fields: (i: number) => Record<string, unknown> = () => ({}))
  : Promise<string[]> => {
    const messages = Array.from({ length: count }, (_, i) => ({ to: { user }, title: `push ${i}`, ...fields(i) }))
    const res = await api('/v1/messages/batch', { body: { messages } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    return res.body.messages.map((m: { id: string }) => m.id)
  }
  const statusOf = async (id: string, deviceId: string): Promise<string> => {
    const res = await api(`/v1/messages/${id}`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return res.body.deliveries.find((d: { deviceId: string }) => d.deviceId === deviceId).status
  }
  const statuses = (messageIds: string[], deviceId: string): Promise<string[]> =>
    Promise.all(messageIds.map(id => statusOf(id, deviceId)))

  const connect = async (user: string, clientId: string, { clean = false } = {}): Promise<MemoryDevice> => {
    const password = Buffer.from(await token(user))
    const [device, server] = duplexPair()
    // each end's close closes the other, as a socket's two ends do
    device.on('close', () => server.destroy())
    server.on('close', () => device.destroy())
    const serverClosed = new Promise<void>(resolve => server.once('close', () => resolve()))
    service.handleMqtt(server as Duplex)

    const publishes: IPublishPacket[] = []
    let publishWaiters: Array<() => void> = []
    let ackAll = false
    const acked = new WeakSet<IPublishPacket>()
    const write = (packet: Packet): void => { device.write(mqttPacket.generate(packet)) }
    const ack = (p: IPublishPacket): void => {
      if (acked.has(p)) return
      acked.add(p)
      write({ cmd: 'puback', messageId: p.messageId! })
    }
    let connack: ((packet: Packet) => void) | undefined
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', packet => {
      if (packet.cmd === 'connack') connack?.(packet)
      if (packet.cmd !== 'publish') return
      publishes.push(packet)
      if (ackAll) ack(packet)
      const waiters = publishWaiters
      publishWaiters = []
      for (const w of waiters) w()
    })
    device.on('data', (chunk: Buffer) => parser.parse(chunk))

    const answered = new Promise<Packet>(resolve => { connack = resolve })
    write({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean,
      clientId,
      keepalive: 0,
      username: 'device',
      password
    })
    const reply = await within(answered, `CONNACK for ${clientId}`)
    if (reply.cmd !== 'connack' || reply.returnCode !== 0) {
      throw new Error(`${clientId} refused: ${JSON.stringify(reply)}`)
    }

    return {
      clientId,
      publishes,
      waitForPublishes: count => within(new Promise(resolve => {
        const check = (): void => {
          if (publishes.length >= count) resolve(publishes.slice())
          else publishWaiters.push(check)
        }
        check()
      }), () => `${count} PUBLISHes on ${clientId} (got ${publishes.length})`),
      puback: ack,
      ackEverything: () => {
        ackAll = true
        for (const p of publishes) ack(p)
      },
      drop: async () => {
        device.destroy()
        await within(serverClosed, `the server's end of ${clientId} to close`)
      }
    }
  }

  return { herald, api, send, sendBatch, statuses, connect, stop: () => herald.stop() }
}

/** `promise`, or a failure naming `what` after `ms`. */
export function within<T> (promise: Promise<T>, what: string | (() => string), ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`))
      }, ms)
    })
  ]).finally(() => clearTimeout(timer))
}
