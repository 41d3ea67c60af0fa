import type { Target } from '../store/accept.js'
import { MAX_BATCH } from './acceptor.js'

// The message as the delivery layer takes it: what a send asks for, its limits, and the exact
// JSON devices receive. Requests are parsed into it by server/http/requests.ts.

/** 28 days: the default and the longest a message waits for a device. */
export const MAX_TTL = 2_419_200
export const MAX_USERS_PER_MESSAGE = 1_000
/** Messages in one POST /v1/messages/batch (one accept transaction holds at most this many). */
export const MAX_BATCH_MESSAGES = MAX_BATCH
/** User ids listed in `to.users` across one batch, so that one request cannot queue millions of rows. */
export const MAX_BATCH_USER_IDS = 10_000
/**
 * Levels of objects and arrays `data` may nest (`data` itself is level 1). Apps read a few
 * levels; the limit keeps every recursive step after validation (the payload, the
 * Idempotency-Key hash, jsonb) far from any stack limit.
 */
export const MAX_DATA_DEPTH = 32
export const MAX_COLLAPSE_KEY_LENGTH = 128

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
