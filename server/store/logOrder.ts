/**
 * The order of the delivery logs (the REST log per delivery, the admin log per message): newest
 * first by accept time, and among rows accepted at the same instant (a batch's messages share
 * it) by seq, so they read in reverse accept order. seq is commit order (store/accept.ts) and
 * follows accept time except where two accepts' clocks and commits disagree by a moment; with
 * accept time first, a since/until filter is a range of the same index a page is read from.
 *
 * Pages are keyset-paginated on (accept time, seq): both are fixed once a row is committed, so
 * a cursor never skips or repeats a row, whatever is accepted between two pages.
 */
export interface LogKey {
  /** accept time in microseconds since the epoch (exact; a Date would round to the millisecond) */
  at: bigint
  seq: bigint
}

/** Epoch microseconds (a bigint parameter) to timestamptz, exact: no floating point on the way. */
export const AT = (param: string): string => `(timestamptz 'epoch' + ${param}::bigint * interval '1 microsecond')`
/** A timestamptz column as epoch microseconds, in text (pg would parse a bigint into a lossy number). */
export const MICROS = (column: string): string => `(extract(epoch from ${column}) * 1000000)::bigint::text`

/** A query's parameters as they are bound: `bind` returns the placeholder (`$n`) for a value. */
export function queryParams (first: unknown[] = []): { values: unknown[], bind: (value: unknown) => string } {
  const values = [...first]
  return { values, bind: value => { values.push(value); return `$${values.length}` } }
}

/** What both delivery logs filter deliveries `d` by: user, device, and a range of accept times. */
export function deliveryConditions (f: { user?: string, device?: string, since?: Date, until?: Date },
  bind: (value: unknown) => string): string[] {
  const cond: string[] = []
  if (f.user !== undefined) cond.push(`d.user_id = ${bind(f.user)}`)
  if (f.device !== undefined) cond.push(`d.device_id = ${bind(f.device)}`)
  if (f.since !== undefined) cond.push(`d.queued_at >= ${bind(f.since)}`)
  if (f.until !== undefined) cond.push(`d.queued_at < ${bind(f.until)}`)
  return cond
}
