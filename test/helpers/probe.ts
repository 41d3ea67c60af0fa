// Small helpers for the security and bad-input tests: refused connections, closes with a
// deadline, raw WebSocket/TCP sockets, hand-made JWTs.
import { createHmac } from 'node:crypto'
import net from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import WebSocket from 'ws'

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Connects with mqtt.js and expects the server to refuse: resolves with the CONNACK return
 * code (mqtt.js puts it on the error's `code`), rejects if the connection is accepted.
 */
export async function connectRefused (url: string, opts: IClientOptions): Promise<number> {
  const client = mqtt.connect(url, {
    protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, clean: false, username: 'device', ...opts
  })
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no CONNACK within 5 s')), 5_000)
      client.once('connect', () => {
        clearTimeout(timer)
        reject(new Error('connection was accepted, expected a refusal'))
      })
      client.once('error', (err: Error & { code?: unknown }) => {
        clearTimeout(timer)
        if (typeof err.code === 'number') resolve(err.code)
        else reject(new Error(`expected a CONNACK refusal, got ${err.message}`))
      })
      client.once('close', () => setTimeout(() => {
        clearTimeout(timer)
        reject(new Error('closed without a CONNACK refusal'))
      }, 50))
    })
  } finally {
    client.end(true)
  }
}

/** Resolves when the client's connection closes; rejects after `ms`. */
export function waitForClose (client: MqttClient, ms = 5_000): Promise<void> {
  if (!client.connected && (client as unknown as { disconnected?: boolean }).disconnected) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms)
    client.once('close', () => { clearTimeout(timer); resolve() })
  })
}

export interface RawWs {
  ws: WebSocket
  /** resolves with the close code once the server closes the connection; rejects after `ms` */
  closed: (ms?: number) => Promise<number>
  /** every byte the server sent */
  received: Buffer[]
}

/** A bare WebSocket to /mqtt with the `mqtt` subprotocol, open. */
export async function openRawWs (wsUrl: string, options: WebSocket.ClientOptions = {}): Promise<RawWs> {
  const ws = new WebSocket(wsUrl, 'mqtt', options)
  const received: Buffer[] = []
  let closeCode: number | undefined
  const closeWaiters: Array<(code: number) => void> = []
  ws.on('message', data => received.push(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer)))
  ws.on('error', () => {}) // a close follows
  ws.on('close', code => {
    closeCode = code
    for (const w of closeWaiters.splice(0)) w(code)
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  const closed = (ms = 5_000): Promise<number> => closeCode !== undefined
    ? Promise.resolve(closeCode)
    : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`WebSocket still open after ${ms} ms`)), ms)
      closeWaiters.push(code => { clearTimeout(timer); resolve(code) })
    })
  return { ws, closed, received }
}

/** A bare TCP socket; `closed()` resolves when the server ends it. */
export async function openRawTcp (
  port: number, host = '127.0.0.1'
): Promise<{ socket: net.Socket, closed: (ms?: number) => Promise<void>, received: Buffer[] }> {
  const socket = net.connect(port, host)
  const received: Buffer[] = []
  let isClosed = false
  const waiters: Array<() => void> = []
  socket.on('data', d => received.push(d))
  socket.on('error', () => {})
  socket.on('close', () => { isClosed = true; for (const w of waiters.splice(0)) w() })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const closed = (ms = 5_000): Promise<void> => isClosed
    ? Promise.resolve()
    : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TCP connection still open after ${ms} ms`)), ms)
      waiters.push(() => { clearTimeout(timer); resolve() })
    })
  return { socket, closed, received }
}

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

/** A JWT assembled by hand: `sign` gets `header.payload` and returns the raw signature ('' for none). */
export function craftJwt (
  header: object, payload: object, sign: (input: string) => Buffer | string = () => ''
): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  const signature = sign(input)
  return `${input}.${typeof signature === 'string' ? signature : b64url(signature)}`
}

/** HS256 over `header.payload` with `secret` (any bytes: a real secret, or a public key's PEM). */
export const hs256 = (secret: string | Buffer) => (input: string): Buffer =>
  createHmac('sha256', secret).update(input).digest()

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/**
 * SUBSCRIBEs `topics` in one packet and returns the granted QoS per topic, in order (128 =
 * refused). mqtt.js 5 rejects the whole call when any topic is refused; the SUBACK is on the error.
 */
export async function grantedQos (client: MqttClient, topics: string[], qos: 0 | 1 | 2): Promise<number[]> {
  try {
    const granted = await client.subscribeAsync(Object.fromEntries(topics.map(t => [t, { qos }])))
    return granted.map(g => g.qos)
  } catch (err) {
    const packet = (err as { packet?: { cmd?: string, granted?: number[] } }).packet
    if (packet?.cmd !== 'suback' || !packet.granted) throw err
    return packet.granted
  }
}
