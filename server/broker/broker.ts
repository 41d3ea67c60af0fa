import { createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import type { Server as HttpServer } from 'node:http'
import { Aedes, type Client } from 'aedes'
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws'
import type { Duplex } from 'node:stream'
import type { Logger } from '../log.js'
import { createHooks, grantedSubscription, identityOf, type HookDeps } from './hooks.js'
import { BROADCAST_PREFIX } from '../ids.js'

/** A WebSocket frame larger than this closes the connection: no MQTT packet of ours comes near it. */
export const MAX_WS_FRAME_BYTES = 64 * 1024
/**
 * An inbound MQTT packet announcing more than this closes the connection as soon as its header
 * arrives. MQTT 3.1.1 allows 256 MB and aedes buffers a packet whole, so without it one client
 * (even before CONNECT, in frames under MAX_WS_FRAME_BYTES or over TCP) holds that much memory.
 * A device sends CONNECT (its token), SUBSCRIBE and receipts of at most 1 KiB.
 */
export const MAX_MQTT_PACKET_BYTES = 64 * 1024
// aedes' default (23) is MQTT 3.1's; device ids chosen by apps are often UUIDs with a prefix.
const MAX_CLIENT_ID_LENGTH = 128
// One stuck device must not hold delivery slots for a minute (aedes' default).
const DRAIN_TIMEOUT_MS = 10_000
const CONNECT_TIMEOUT_MS = 10_000

export interface BrokerDeps extends HookDeps {
  persistence: unknown
  onReady: (client: Client, userId: string) => void
  /** a connection ended; `connectionId` is undefined for one that never authenticated */
  onGone: (client: Client, connectionId: string | undefined) => void
  /**
   * forgets broadcast subscriptions this process recorded for a device (recordBroadcastSubscription):
   * `topics` unsubscribed, or all but those a successor connection here kept
   */
  forgetBroadcastSubscriptions: (deviceId: string, which: { topics: string[] } | { allBut: string[] }) => Promise<void>
}

/**
 * The embedded MQTT broker: aedes with Herald's hooks and Postgres persistence, served over
 * WebSocket at /mqtt (and optionally plain TCP).
 */
export class Broker {
  readonly aedes: Aedes
  private wss: WebSocketServer | undefined
  private tcp: TcpServer | undefined
  private readonly expiryTimers = new WeakMap<Client, NodeJS.Timeout>()
  private listening = false

  constructor (private readonly deps: BrokerDeps, private readonly log: Logger) {
    storeOnlyGrantedSubscriptions(deps.persistence)
    this.aedes = new Aedes({
      persistence: deps.persistence,
      maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
      drainTimeout: DRAIN_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // no keepaliveLimit: aedes refuses keep-alive 0 and anything above it with CONNACK 6, which
      // MQTT 3.1.1 does not have; preConnect (hooks.ts) treats them as MAX_KEEPALIVE_S instead
      maxTopicLevels: 8,
      ...createHooks(deps)
    })
    const a = this.aedes
    // without a listener, an error inside aedes would end the process
    ;(a as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err }, 'broker error'))
    a.on('clientError', (client, err) =>
      log.debug({ deviceId: client.id, err: err.message }, 'device connection error'))
    a.on('connectionError', (_client, err) =>
      log.debug({ err: err.message }, 'connection refused before CONNECT completed'))
    a.on('clientReady', client => this.ready(client))
    a.on('clientDisconnect', client => this.gone(client))
    this.forgetBeforeUnsuback()
  }

  /**
   * A broadcast subscription is recorded in Postgres before its SUBACK (hooks.ts
   * authorizeSubscribe) and forgotten before its UNSUBACK: after the UNSUBACK no message for the
   * topic may reach the device [MQTT-3.10.4-2], whichever process it is sent through. aedes has
   * no hook there, but it unsubscribes each topic of an UNSUBSCRIBE with broker.unsubscribe and
   * answers once all are done; a closing connection does the same, and gone() forgets those.
   */
  private forgetBeforeUnsuback (): void {
    type Unsubscribe = (topic: string, func: unknown, done?: (err?: Error) => void) => void
    const aedes = this.aedes as unknown as { unsubscribe: Unsubscribe }
    const unsubscribe = aedes.unsubscribe.bind(aedes)
    aedes.unsubscribe = (topic, func, done) => {
      const client = topic.startsWith(BROADCAST_PREFIX) ? this.subscriberOf(topic, func) : undefined
      if (client === undefined) return unsubscribe(topic, func, done)
      this.deps.forgetBroadcastSubscriptions(client.id, { topics: [topic] })
        .then(() => unsubscribe(topic, func, done), (err: Error) => {
          this.log.warn({ deviceId: client.id, topic, err: err.message }, 'forgetting a subscription failed')
          done?.(err)
        })
    }
  }

  /** The open connection whose subscription to `topic` is `func` (aedes' listener for it). */
  private subscriberOf (topic: string, func: unknown): Client | undefined {
    for (const client of Object.values(clientsOf(this.aedes))) {
      if ((client as unknown as { closed: boolean }).closed) continue
      const sub = subscriptionsOf(client)[topic] as { func?: unknown } | undefined
      if (sub?.func === func) return client
    }
    return undefined
  }

  async start (): Promise<void> {
    await this.aedes.listen()
  }

  /** Serves MQTT over WebSocket on `server` at /mqtt. */
  attachWebSocket (server: HttpServer): void {
    this.wss = new WebSocketServer({
      server,
      path: '/mqtt',
      maxPayload: MAX_WS_FRAME_BYTES,
      // mqtt.js offers "mqtt"; accept it, or no subprotocol for simple clients
      handleProtocols: protocols => protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false
    })
    this.wss.on('connection', ws => {
      const stream = coalescingWebSocketStream(ws)
      stream.on('error', err => this.log.debug({ err: err.message }, 'websocket stream error'))
      // without the upgrade request: aedes would keep it (headers and all) for the life of the
      // connection as client.req, which nothing here reads
      guardParser(this.aedes.handle(stream))
    })
    this.wss.on('error', err => this.log.error({ err }, 'websocket server error'))
    this.listening = true
  }

  /**
   * Serves one MQTT connection over any byte stream: a socket, or one end of an in-memory
   * `duplexPair()` in a test that builds Herald without opening a port.
   */
  handle (stream: Duplex): void {
    guardParser(this.aedes.handle(stream))
  }

  async listenTcp (port: number, host: string): Promise<number> {
    this.tcp = createTcpServer(socket => this.handle(socket))
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject)
      this.tcp!.listen(port, host, () => resolve())
    })
    const address = this.tcp.address()
    return typeof address === 'object' && address ? address.port : port
  }

  get isListening (): boolean {
    return this.listening && !this.aedes.closed
  }

  get connectedCount (): number {
    return Object.keys(clientsOf(this.aedes)).length
  }

  /** Stops accepting connections and closes every device connection. */
  async close (): Promise<void> {
    this.listening = false
    await new Promise<void>(resolve => this.tcp ? this.tcp.close(() => resolve()) : resolve())
    for (const ws of this.wss?.clients ?? []) ws.terminate()
    await new Promise<void>(resolve => this.wss ? this.wss.close(() => resolve()) : resolve())
    await new Promise<void>(resolve => this.aedes.close(() => resolve()))
  }

  private ready (client: Client): void {
    // aedes reads the session after CONNACK and only then says "ready": a device that left in
    // between has already had its clientDisconnect, and must not get a channel now
    if ((client as unknown as { closed: boolean }).closed || clientsOf(this.aedes)[client.id] !== client) return
    const identity = identityOf(client)
    if (!identity) {
      client.close()
      return
    }
    // aedes checks the token at CONNECT only; the connection ends when the token does
    const remaining = identity.expiresAt - Date.now()
    const timer = setTimeout(() => {
      this.log.info({ deviceId: client.id, userId: identity.userId }, 'device token expired; disconnecting')
      client.close()
    }, Math.max(0, Math.min(remaining, 2 ** 31 - 1)))
    timer.unref()
    this.expiryTimers.set(client, timer)
    this.log.debug({ deviceId: client.id, userId: identity.userId, clean: client.clean }, 'device connected')
    this.deps.onReady(client, identity.userId)
  }

  private gone (client: Client): void {
    clearTimeout(this.expiryTimers.get(client))
    // a takeover by the same id here registers the new client before the old one is gone (aedes
    // empties client.subscriptions before clientDisconnect): keep what the successor holds
    const successor = clientsOf(this.aedes)[client.id]
    const kept = successor && successor !== client ? Object.keys(subscriptionsOf(successor)) : []
    this.deps.forgetBroadcastSubscriptions(client.id, { allBut: kept }).catch((err: Error) =>
      this.log.warn({ deviceId: client.id, err: err.message },
        'forgetting subscriptions failed; the leader removes them'))
    this.deps.onGone(client, identityOf(client)?.connectionId)
  }

  /** The device connections open here, for recording them again after this node was taken for gone. */
  connections (): Array<{ deviceId: string, connectionId: string }> {
    const open: Array<{ deviceId: string, connectionId: string }> = []
    for (const client of Object.values(clientsOf(this.aedes))) {
      const identity = identityOf(client)
      if (identity) open.push({ deviceId: client.id, connectionId: identity.connectionId })
    }
    return open
  }
}

/**
 * aedes 1.2 hands the persistence every subscription of a SUBSCRIBE packet once one of them is
 * allowed, refused ones included and at the requested QoS. Topic fan-out reads the stored
 * subscriptions, so a refused `topics/#` or `#` in a persistent session would receive every
 * broadcast: store only what authorizeSubscribe grants.
 */
function storeOnlyGrantedSubscriptions (persistence: unknown): void {
  type AddSubscriptions = (client: Client, subs: Array<{ topic: string, qos: number }>) => Promise<void>
  const p = persistence as { addSubscriptions?: AddSubscriptions }
  const add = p.addSubscriptions?.bind(p)
  if (!add) return
  p.addSubscriptions = (client, subs) => add(client, subs.flatMap(sub => grantedSubscription(client, sub) ?? []))
}

/** Fixes two things mqtt-packet's parser does with a connection's inbound bytes. */
function guardParser (client: Client): void {
  const parser = (client as unknown as { _parser?: MqttParser })._parser
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._parseConnect !== 'function') return
  parseLength ??= parser._parseLength
  parseConnect ??= parser._parseConnect
  // shared functions, not closures: a few bytes per connection
  parser._parseLength = parseLengthWithLimit
  parser._parseConnect = parseConnectOfAnyLevel
}

let parseLength: MqttParser['_parseLength'] | undefined
let parseConnect: MqttParser['_parseConnect'] | undefined

/**
 * Refuses an inbound packet whose fixed header announces more than MAX_MQTT_PACKET_BYTES:
 * mqtt-packet's parser has no size limit for MQTT 3.1.1.
 */
function parseLengthWithLimit (this: MqttParser): boolean {
  const done = parseLength!.call(this)
  if (done && this.packet.length > MAX_MQTT_PACKET_BYTES) {
    this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds the limit of ${MAX_MQTT_PACKET_BYTES}`))
    return false
  }
  return done
}

const PROTOCOL_NAMES = new Set(['MQTT', 'MQIsdp'])
// 3.1, 3.1.1, and 5 (which aedes answers with CONNACK 1 itself); bit 7 is mqtt-packet's bridge flag
const PARSED_LEVELS = new Set([3, 4, 5])

/**
 * [MQTT-3.1.2-2]: a CONNECT of a protocol level the server does not support gets CONNACK 1
 * (unacceptable protocol version) before the connection is closed. mqtt-packet fails the parse
 * of any level but 3, 4 and 5 instead, and the client is closed with no answer: hand aedes a
 * CONNECT carrying just the level, which aedes answers with 1.
 */
function parseConnectOfAnyLevel (this: MqttParser): unknown {
  const list = this._list
  const end = Math.min(this.packet.length, list.length)
  const nameLength = end >= 2 ? list.readUInt16BE(0) : end
  if (end >= 3 + nameLength) {
    const level = list.readUInt8(2 + nameLength)
    const protocolId = PARSED_LEVELS.has(level & 0x7f) ? undefined : list.slice(2, 2 + nameLength).toString('latin1')
    if (protocolId !== undefined && PROTOCOL_NAMES.has(protocolId)) {
      return Object.assign(this.packet, { protocolId, protocolVersion: level, clientId: '', clean: true, keepalive: 0 })
    }
  }
  return parseConnect!.call(this)
}

interface MqttParser {
  packet: { length: number }
  /** the packet's bytes after its fixed header (a BufferList) */
  _list: {
    length: number
    readUInt8: (offset: number) => number
    readUInt16BE: (offset: number) => number
    slice: (start: number, end: number) => Buffer
  }
  _parseLength: () => boolean
  _parseConnect: () => unknown
  _emitError: (err: Error) => void
}

// aedes keeps these on its objects but leaves them out of its type declarations
const clientsOf = (aedes: Aedes): Record<string, Client> =>
  (aedes as unknown as { clients: Record<string, Client> }).clients
const subscriptionsOf = (client: Client): Record<string, unknown> =>
  (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions

/**
 * ws 8's stream sends every write as its own WebSocket frame, and mqtt-packet writes a PUBLISH
 * in several pieces (header, topic, id, payload) between a cork() and an uncork() on the next
 * tick. With _writev, everything written in one tick (every packet, whole) leaves as one
 * binary frame: MQTT over WebSocket allows any packets per frame [MQTT-6.0.0-2 … 6.0.0-4],
 * and it saves a frame header, a mask check and a socket write per piece on both ends.
 */
export function coalescingWebSocketStream (ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws)
  stream._writev = (chunks, callback) => {
    const frame = chunks.length === 1 ? toBuffer(chunks[0]) : Buffer.concat(chunks.map(toBuffer))
    ws.send(frame, { binary: true }, callback)
  }
  return stream
}

const toBuffer = ({ chunk, encoding }: { chunk: unknown, encoding: BufferEncoding }): Buffer =>
  Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, encoding)
