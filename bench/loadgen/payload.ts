// The message every system carries: the JSON a Herald device receives, and the same JSON, of
// the same size, published directly to the baselines. `data.b` is the bench's own message id
// (receipts are counted by it, per device), `data.t` the sender's clock just before the send,
// `data.n` the index of the server process the message was sent through (0 with one process).
import { randomUUID } from 'node:crypto'

/** About what a push carries: the payload a device receives is this size. */
export const TARGET_PAYLOAD_BYTES = 200
const TTL_MS = 28 * 24 * 3600 * 1000

/** The request body of `POST /v1/messages`. */
export function heraldBody (to: unknown, b: number, t: number, pad: number, n = 0): string {
  return JSON.stringify({ to, title: 'bench', body: 'x'.repeat(pad), data: { b, t, n } })
}

/**
 * What Herald's devicePayload() produces for that body (server/delivery/message.ts), built by the
 * publisher for the baselines.
 */
export function devicePayload (b: number, t: number, pad: number, topic?: string): string {
  const sentAt = new Date()
  return JSON.stringify({
    id: randomUUID(),
    title: 'bench',
    body: 'x'.repeat(pad),
    data: { b, t, n: 0 },
    priority: 'normal',
    sentAt: sentAt.toISOString(),
    expiresAt: new Date(sentAt.getTime() + TTL_MS).toISOString(),
    topic
  })
}

/** Body padding that makes the device payload about TARGET_PAYLOAD_BYTES. */
export function padFor (): number {
  const sample = devicePayload(12345, performance.timeOrigin + performance.now(), 0)
  return Math.max(0, TARGET_PAYLOAD_BYTES - Buffer.byteLength(sample))
}
