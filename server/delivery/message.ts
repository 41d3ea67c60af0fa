import type { Target } from '../store/accept.js'

// The message as the delivery layer takes it: what a send asks for, and the exact JSON devices
// receive. The REST layer (api/messages.ts) parses requests into it.

/** The JSON a device receives may not exceed this (413 beyond). */
export const MAX_PAYLOAD_BYTES = 4_096

/** One message as sent: validated, defaults applied. */
export interface SendInput {
  to: Target
  title: string | null
  body: string | null
  data: Record<string, unknown> | null
  ttl: number
  priority: 'normal' | 'high'
  collapseKey: string | null
}

/** The exact JSON a device receives. */
export function devicePayload (id: string, input: SendInput, acceptedAt: Date, expiresAt: Date): Buffer {
  return Buffer.from(JSON.stringify({
    id,
    title: input.title ?? undefined,
    body: input.body ?? undefined,
    data: input.data ?? undefined,
    priority: input.priority,
    collapseKey: input.collapseKey ?? undefined,
    sentAt: acceptedAt.toISOString(),
    expiresAt: expiresAt.toISOString(),
    topic: 'topic' in input.to ? input.to.topic : undefined
  }))
}
