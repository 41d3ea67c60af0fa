import type { ReceiptEvent } from './outbox.js'

/** A push as Herald sends it (README "MQTT for devices"). */
export interface Push {
  /** the dedupe key: the client hands each id to the app once */
  id: string
  title?: string
  body?: string
  data?: Record<string, unknown>
  priority: 'normal' | 'high'
  /** a newer message with the same key replaces this one */
  collapseKey?: string
  /** ISO 8601, when the server accepted it */
  sentAt: string
  /** ISO 8601; the client drops a message that arrives after it */
  expiresAt: string
  /** set when the push came through a broadcast topic (`topics/<name>`), without the prefix */
  topic?: string
}

/** A push handed to the app, with the receipts it can send for it. */
export interface HeraldMessage extends Push {
  /** The app showed it. Kept until sent (across restarts too); resolves once stored. */
  displayed: () => Promise<void>
  /** The user opened it. */
  opened: () => Promise<void>
  /** The user dismissed it. */
  dismissed: () => Promise<void>
}

/** The push in a PUBLISH payload, or undefined when it is not one (not JSON, no string `id`). */
export function parsePush (payload: string): Push | undefined {
  let value: unknown
  try { value = JSON.parse(payload) } catch { return undefined }
  if (typeof value !== 'object' || value === null) return undefined
  const push = value as Push
  return typeof push.id === 'string' && push.id !== '' ? push : undefined
}

export function withReceipts (push: Push, receipt: (id: string, event: ReceiptEvent) => Promise<void>): HeraldMessage {
  return {
    ...push,
    displayed: () => receipt(push.id, 'displayed'),
    opened: () => receipt(push.id, 'opened'),
    dismissed: () => receipt(push.id, 'dismissed')
  }
}
