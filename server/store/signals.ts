import type { Pool, PoolClient } from '../db/pool.js'

/**
 * Signals between Herald processes, through Postgres' LISTEN/NOTIFY: no other infrastructure.
 * Each process listens on its own channel (named after its node id) and on one channel for the
 * whole cluster (server/services/cluster.ts receives them). A signal only says that something
 * changed and for which devices: what changed is read from the tables, so a lost signal costs
 * time (the listener resynchronises when it reconnects), never a message.
 *
 * NOTIFY inside a transaction is delivered when it commits, and not at all if it rolls back:
 * the accept's signals leave with its commit.
 */
export type Signal =
  /** these devices, connected to the receiving node, have new deliveries; `live`: seqs of ttl-0 ones among them */
  | { kind: 'queued', devices: string[], live: number[] }
  /**
   * these devices connected to another node since: the receiver closes its connection if the
   * device is no longer its
   */
  | { kind: 'moved', devices: string[] }
  /** these devices' sessions were ended (DELETE /v1/devices): the receiver closes their connections */
  | { kind: 'ended', devices: string[] }
  /** an API key was revoked: every process forgets the keys it cached */
  | { kind: 'api-key-revoked' }

/** The channel every process listens on. */
export const CLUSTER_CHANNEL = 'herald_cluster'

/** A node's own channel: an identifier of at most 63 bytes, so the node id's uuid without dashes. */
export function nodeChannel (nodeId: string): string {
  return `herald_node_${nodeId.replace(/^node-/, '').replaceAll('-', '')}`
}

// Postgres refuses a NOTIFY payload of 8,000 bytes or more: device lists are split below this
const MAX_PAYLOAD_BYTES = 7_000

/** The payloads of `signal`, each under Postgres' limit; a long device list becomes several. */
export function encodeSignal (signal: Signal): string[] {
  if (signal.kind === 'api-key-revoked') return [JSON.stringify(signal)]
  const payloads: string[] = []
  const live = signal.kind === 'queued' ? signal.live : []
  let devices: string[] = []
  let size = 0
  const flush = (withLive: number[]): void => {
    const part = signal.kind === 'queued'
      ? { kind: signal.kind, devices, live: withLive }
      : { kind: signal.kind, devices }
    payloads.push(JSON.stringify(part))
    devices = []
    size = 0
  }
  for (const device of signal.devices) {
    // a device id is at most 128 characters of up to 4 bytes each, plus quotes and a comma
    const bytes = Buffer.byteLength(device) + 3
    if (size + bytes > MAX_PAYLOAD_BYTES - 200 && devices.length > 0) flush([])
    devices.push(device)
    size += bytes
  }
  // seqs of ttl-0 deliveries travel with the last part (or alone, in parts of their own)
  const perPart = Math.floor((MAX_PAYLOAD_BYTES - size - 200) / 17)
  if (live.length <= Math.max(perPart, 0)) {
    flush(live)
  } else {
    if (devices.length > 0) flush([])
    for (let i = 0; i < live.length; i += 400) {
      payloads.push(JSON.stringify({ kind: 'queued', devices: [], live: live.slice(i, i + 400) }))
    }
  }
  return payloads
}

export function decodeSignal (payload: string): Signal | undefined {
  try {
    const s = JSON.parse(payload) as Signal
    switch (s.kind) {
      case 'queued': return Array.isArray(s.devices) && Array.isArray(s.live) ? s : undefined
      case 'moved':
      case 'ended': return Array.isArray(s.devices) ? s : undefined
      case 'api-key-revoked': return s
      default: return undefined
    }
  } catch {
    return undefined
  }
}

/** Sends signals, each to a channel, in one statement (inside a transaction: at its commit). */
export async function sendSignals (db: Pool | PoolClient,
  signals: Array<{ channel: string, signal: Signal }>): Promise<void> {
  const channels: string[] = []
  const payloads: string[] = []
  for (const { channel, signal } of signals) {
    for (const payload of encodeSignal(signal)) {
      channels.push(channel)
      payloads.push(payload)
    }
  }
  if (channels.length === 0) return
  await db.query({
    name: 'herald_send_signals',
    text: 'select pg_notify(c, p) from unnest($1::text[], $2::text[]) as t(c, p)',
    values: [channels, payloads]
  })
}
