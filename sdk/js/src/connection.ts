// One MQTT 3.1.1 connection to Herald over WebSocket, through mqtt.js. It never reconnects by
// itself: the client (client.ts) decides when to try again, and with which token.
import mqtt, { type MqttClient } from 'mqtt'
import { HeraldError, refusal } from './errors.js'

/** How long a graceful end may take before the socket is dropped (a dead network never answers). */
const END_TIMEOUT_MS = 2_000

export interface ConnectionOptions {
  url: string
  deviceId: string
  token: string
  keepaliveSeconds: number
  connectTimeoutMs: number
  /** a PUBLISH arrived: its PUBACK is sent once the promise settles, and the next one is read only then */
  onPublish: (topic: string, payload: string) => Promise<void>
}

export interface Connection {
  /** resolves when the connection has ended, however it ended */
  readonly ended: Promise<void>
  /** QoS 1: resolves at the PUBACK, rejects if the connection ends first */
  publish: (topic: string, payload: string) => Promise<void>
  /** the QoS granted to each topic, in order; 128 is a refusal */
  subscribe: (topics: string[]) => Promise<number[]>
  unsubscribe: (topics: string[]) => Promise<void>
  /** sends DISCONNECT; publishes still waiting for their PUBACK are abandoned (the caller resends them) */
  end: () => Promise<void>
}

/** Resolves once the server accepted the connection (CONNACK 0); rejects with a HeraldError otherwise. */
export function openConnection (options: ConnectionOptions): Promise<Connection> {
  const client = mqtt.connect(options.url, {
    protocolVersion: 4, // MQTT 3.1.1
    clientId: options.deviceId,
    clean: false, // a persistent session: what is sent while the device is away waits for it
    username: 'device', // 3.1.1 sends a password only with a user name; Herald ignores it
    password: options.token,
    keepalive: options.keepaliveSeconds,
    connectTimeout: options.connectTimeoutMs,
    reconnectPeriod: 0,
    resubscribe: false,
    // mqtt.js times its keep-alive in a Worker made from a blob: URL by default, which a
    // Content-Security-Policy without `worker-src blob:` (Herald's own pages) refuses
    timerVariant: 'native'
  })
  let ended!: () => void
  const endedPromise = new Promise<void>(resolve => { ended = resolve })
  client.on('close', () => ended())

  client.handleMessage = (packet, acknowledge) => {
    options.onPublish(packet.topic, packet.payload.toString()).then(() => acknowledge(), () => acknowledge())
  }

  let ending: Promise<void> | undefined
  const connection: Connection = {
    ended: endedPromise,
    publish: async (topic, payload) => { await client.publishAsync(topic, payload, { qos: 1 }) },
    subscribe: async topics => {
      try {
        const granted = await client.subscribeAsync(topics, { qos: 1 })
        return topics.map(topic => granted.find(g => g.topic === topic)?.qos ?? 128)
      } catch (err) {
        // mqtt.js rejects the whole SUBSCRIBE when one topic is refused; its SUBACK says which
        const granted = (err as { packet?: { granted?: unknown } }).packet?.granted
        if (Array.isArray(granted) && granted.length === topics.length) return granted.map(Number)
        throw err
      }
    },
    unsubscribe: async topics => { await client.unsubscribeAsync(topics) },
    end: () => (ending ??= end(client, endedPromise))
  }

  return new Promise((resolve, reject) => {
    let settled = false
    const settle = (error?: HeraldError): void => {
      if (settled) return
      settled = true
      if (!error) return resolve(connection)
      client.end(true)
      reject(error)
    }
    client.on('connect', () => settle())
    // after the CONNACK, an error is followed by 'close', which is what the client watches
    client.on('error', err => settle(connectError(err)))
    client.on('close', () =>
      settle(new HeraldError('connection-failed', 'the connection closed before the server answered')))
  })
}

function connectError (err: Error & { code?: unknown }): HeraldError {
  if (typeof err.code === 'number') return refusal(err.code)
  return new HeraldError('connection-failed', `connecting failed: ${err.message}`, false, { cause: err })
}

async function end (client: MqttClient, ended: Promise<void>): Promise<void> {
  // mqtt.js would wait for every PUBACK before its DISCONNECT, for ever on a dead network
  for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id))
  client.end(false)
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<void>(resolve => {
    timer = setTimeout(() => {
      client.stream?.destroy()
      resolve()
    }, END_TIMEOUT_MS)
  })
  await Promise.race([ended, late])
  clearTimeout(timer)
}
