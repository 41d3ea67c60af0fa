import type { DeliveryStatus } from '../wire.js'

export type { DeliveryStatus }
/** Every status (test/wire.test.ts checks this list against the type and openapi.yaml). */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] =
  ['queued', 'sent', 'delivered', 'expired', 'replaced', 'revoked']

/**
 * The status a delivery reads as, everywhere it is read (REST, admin UI, metrics): the stored
 * status, except that a `queued` or `sent` row whose TTL has passed reads `expired` at once.
 * The expiry sweep (delivery/maintenance.ts) writes `expired` only some seconds later; a read
 * must not wait for it.
 *
 * A ttl-0 row (expires_at = queued_at) is live-only: it is for the connection that was online
 * at accept and is in flight the moment it is accepted, so it cannot read expired at its
 * expires_at. It is marked `expired` when its connection ends first, and reads (and is swept)
 * as expired once LIVE_ONLY_GRACE_SECONDS have passed without a PUBACK.
 *
 * Every query in server/store/ that shows, counts or filters by status uses the pieces below.
 */

/** How long a ttl-0 message on its way to an online device has to be acknowledged before it counts as expired. */
export const LIVE_ONLY_GRACE_SECONDS = 30

const UNDELIVERED = "('queued', 'sent')"

/** True when the row (alias `d`) has outlived its TTL: the rule above. Uses expires_at and queued_at. */
export function pastExpiry (d: string): string {
  return `(${d}.expires_at <= now() and (${d}.expires_at > ${d}.queued_at or ` +
    `${d}.expires_at <= now() - interval '${LIVE_ONLY_GRACE_SECONDS} seconds'))`
}

/** The row's status as shown: `expired` for an undelivered row past its TTL. */
export function effectiveStatus (d: string): string {
  return `(case when ${d}.status in ${UNDELIVERED} and ${pastExpiry(d)} then 'expired' else ${d}.status end)`
}

/** The row's reason as shown: one that reads expired by the rule says why before the sweep writes it. */
export function effectiveReason (d: string): string {
  return `(case when ${d}.status in ${UNDELIVERED} and ${pastExpiry(d)} then ` +
    `(case when ${d}.expires_at = ${d}.queued_at then 'connection-ended' else 'ttl-ended' end) else ${d}.reason end)`
}

/**
 * Still waiting for its device: queued or sent, and not past its TTL (the complement of
 * pastExpiry among queued and sent rows, as expires_at >= queued_at), written so that
 * expires_at bounds an index range.
 */
export function waiting (d: string): string {
  return `(${d}.status in ${UNDELIVERED} and ` +
    `${d}.expires_at > now() - interval '${LIVE_ONLY_GRACE_SECONDS} seconds' and ` +
    `(${d}.expires_at > now() or ${d}.expires_at = ${d}.queued_at))`
}

/**
 * How many deliveries are waiting, in the whole database, as a scalar SQL expression: rows with
 * TTL left (index-only on deliveries_expiring) plus ttl-0 rows within their grace (a narrow range).
 */
export const COUNT_WAITING = `((select count(*) from deliveries where status in ${UNDELIVERED} and expires_at > now()) +
  (select count(*) from deliveries where status in ${UNDELIVERED} and expires_at <= now()
     and expires_at > now() - interval '${LIVE_ONLY_GRACE_SECONDS} seconds' and expires_at = queued_at))::int`

/**
 * Conditions whose union is "reads as `status`", each starting with an equality or IN on
 * `status`, so each can be read in order from an index that starts with status (a single OR
 * could not): `expired` is the stored ones plus the undelivered rows past their TTL (few: the
 * sweep writes them within seconds).
 */
export function statusBranches (d: string, status: DeliveryStatus): string[] {
  switch (status) {
    case 'queued':
    case 'sent':
      // "not past its TTL" as the CASE, which the planner keeps as a filter on the ordered
      // status index: spelt out, it bounds expires_at, and the planner, which cannot know that
      // nearly every queued row has TTL left, read all queued rows by expiry and sorted them
      return [`(${d}.status = '${status}' and ${effectiveStatus(d)} = '${status}')`]
    case 'expired':
      // the overdue rows are found once per query through deliveries_expiring (they are few: the
      // sweep marks them within seconds) and picked by seq; as a plain condition the planner
      // walked the whole log backwards looking for them
      return [`${d}.status = 'expired'`,
        `${d}.seq = any(array(select o.seq from deliveries o where o.status in ${UNDELIVERED} and ${pastExpiry('o')}))`]
    case 'delivered':
    case 'replaced':
    case 'revoked':
      return [`${d}.status = '${status}'`]
    default:
      // the status is put into the SQL text: only the known ones
      throw new Error(`unknown delivery status ${JSON.stringify(status)}`)
  }
}
