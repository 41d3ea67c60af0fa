// Raw MQTT for the protocol-edge and fuzz tests: CONNECT packets built byte by byte (mqtt-packet's
// generator refuses to write the invalid ones these tests need), and a bare WebSocket device that
// parses what the server sends back.
import mqttPacket, { type Packet } from 'mqtt-packet'
import WebSocket from 'ws'

/** An MQTT UTF-8 string: two length bytes, then the bytes. */
export function mqttString (value: string | Buffer): Buffer {
  const bytes = Buffer.from(value)
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes])
}

/** The remaining-length field of a fixed header (MQTT 3.1.1 §2.2.3). */
export function remainingLength (length: number): Buffer {
  const bytes: number[] = []
  do {
    let digit = length % 128
    length = Math.floor(length / 128)
    if (length > 0) digit |= 0x80
    bytes.push(digit)
  } while (length > 0)
  return Buffer.from(bytes)
}

export interface ConnectFields {
  protocolName?: string
  level?: number
  clean?: boolean
  keepalive?: number
  clientId?: string | Buffer
  will?: { topic: string | Buffer, payload: Buffer, qos?: number, retain?: boolean }
  username?: string | Buffer
  password?: string | Buffer
  /** the connect flags byte as given, instead of the one the fields above imply */
  flags?: number
  /** the first byte of the fixed header; 0x10 is CONNECT with its reserved flags 0 */
  header?: number
}

/** A CONNECT packet with whatever fields it is given, valid or not. */
export function connectBytes (fields: ConnectFields = {}): Buffer {
  const { protocolName = 'MQTT', level = 4, clean = true, keepalive = 60, clientId = 'raw', will, username, password } =
    fields
  const impliedFlags = (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0) |
    (will ? 0x04 | ((will.qos ?? 0) << 3) | (will.retain ? 0x20 : 0) : 0) | (clean ? 0x02 : 0)
  const body = Buffer.concat([
    mqttString(protocolName),
    Buffer.from([level, fields.flags ?? impliedFlags, keepalive >> 8, keepalive & 0xff]),
    mqttString(clientId),
    ...(will ? [mqttString(will.topic), mqttString(will.payload)] : []),
    ...(username !== undefined ? [mqttString(username)] : []),
    ...(password !== undefined ? [mqttString(password)] : [])
  ])
  return Buffer.concat([Buffer.from([fields.header ?? 0x10]), remainingLength(body.length), body])
}

export interface RawDevice {
  ws: WebSocket
  /** every packet the server sent, parsed */
  packets: Packet[]
  /** resolves with the next packet of `cmd` not yet taken; rejects after `ms` or on close */
  next: (cmd: Packet['cmd'], ms?: number) => Promise<Packet>
  /** resolves with the close code once the connection is closed; rejects after `ms` */
  closed: (ms?: number) => Promise<number>
}

/** A bare WebSocket to /mqtt (subprotocol `mqtt`) that parses the server's packets. */
export async function openRawDevice (wsUrl: string): Promise<RawDevice> {
  const ws = new WebSocket(wsUrl, 'mqtt')
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const packets: Packet[] = []
  let taken = 0
  let closeCode: number | undefined
  const changed: Array<() => void> = []
  const notify = (): void => { for (const waiter of changed.splice(0)) waiter() }
  parser.on('packet', packet => { packets.push(packet); notify() })
  parser.on('error', () => ws.terminate())
  ws.on('message', data => parser.parse(data as Buffer))
  ws.on('error', () => {}) // a close follows
  ws.on('close', code => { closeCode = code; notify() })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })

  /** resolves once `probe` returns a value, re-checked whenever something arrives */
  function until<T> (what: string, ms: number, probe: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
      const check = (): void => {
        let value: T | undefined
        try {
          value = probe()
        } catch (err) {
          clearTimeout(timer)
          return reject(err)
        }
        if (value !== undefined) {
          clearTimeout(timer)
          resolve(value)
        } else changed.push(check)
      }
      check()
    })
  }

  return {
    ws,
    packets,
    next: (cmd, ms = 5_000) => until(cmd, ms, () => {
      const index = packets.findIndex((p, i) => i >= taken && p.cmd === cmd)
      if (index >= 0) {
        taken = index + 1
        return packets[index]
      }
      if (closeCode !== undefined) throw new Error(`connection closed (${closeCode}) before a ${cmd}`)
      return undefined
    }),
    closed: (ms = 5_000) => until('the connection to close', ms, () => closeCode)
  }
}
