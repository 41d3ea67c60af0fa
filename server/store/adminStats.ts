import type { Pool } from '../db/pool.js'
import type { MinuteSeries, Overview } from '../wire.js'
import { COUNT_WAITING, pastExpiry } from './deliveryStatus.js'

export type { Overview }

/** Minutes the headline latency is measured over. */
export const LATENCY_WINDOW_MINUTES = 5
const SERIES_MINUTES = 60

/**
 * The overview's figures, each read from an index: devices online (devices_online), waiting
 * (deliveries_expiring), expired (deliveries_expired, plus deliveries_expiring for the ones past
 * their TTL the sweep has not marked yet), accepted per minute (messages_admin_log),
 * delivered and latency (deliveries_delivered_at); nodes running from `nodes`, a row per process.
 */
export async function readOverview (pool: Pool): Promise<Overview> {
  const [counts, latency, accepted, delivered] = await Promise.all([
    pool.query<{ at: Date, devicesOnline: number, nodesRunning: number, waiting: number, expiredLastDay: number }>(
      `select now() as at,
              (select count(*)::int from devices where connected_node is not null) as "devicesOnline",
              (select count(*)::int from nodes where gone_at is null) as "nodesRunning",
              ${COUNT_WAITING} as waiting,
              (select count(*)::int from deliveries
                where status = 'expired' and expires_at > now() - interval '1 day') +
              (select count(*)::int from deliveries d
                where d.status in ('queued', 'sent') and d.expires_at > now() - interval '1 day' and ${pastExpiry('d')}
              ) as "expiredLastDay"`),
    pool.query<{ p50: number | null, p95: number | null, samples: number }>(
      `select percentile_cont(0.5) within group (order by ms) as p50,
              percentile_cont(0.95) within group (order by ms) as p95,
              count(*)::int as samples
       from (select extract(epoch from delivered_at - queued_at) * 1000 as ms from deliveries
             where delivered_at is not null and delivered_at > now() - make_interval(mins => $1)) t`,
      [LATENCY_WINDOW_MINUTES]),
    pool.query<{ minute: number, n: number }>(
      `select extract(epoch from date_trunc('minute', accepted_at))::bigint as minute, count(*)::int as n
       from messages where accepted_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
       group by 1`, [SERIES_MINUTES]),
    pool.query<{ minute: number, n: number, p50: number | null, p95: number | null }>(
      `select extract(epoch from date_trunc('minute', delivered_at))::bigint as minute, count(*)::int as n,
              percentile_cont(0.5) within group (order by extract(epoch from delivered_at - queued_at) * 1000) as p50,
              percentile_cont(0.95) within group (order by extract(epoch from delivered_at - queued_at) * 1000) as p95
       from deliveries
       where delivered_at is not null and delivered_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
       group by 1`, [SERIES_MINUTES])
  ])
  const c = counts.rows[0]
  const firstMinute = Math.floor(c.at.getTime() / 60_000) * 60 - (SERIES_MINUTES - 1) * 60
  const series: MinuteSeries = { minutes: [], accepted: [], delivered: [], p50: [], p95: [] }
  const acceptedBy = new Map(accepted.rows.map(r => [Number(r.minute), r.n]))
  const deliveredBy = new Map(delivered.rows.map(r => [Number(r.minute), r]))
  for (let i = 0; i < SERIES_MINUTES; i++) {
    const minute = firstMinute + i * 60
    const d = deliveredBy.get(minute)
    series.minutes.push(minute)
    series.accepted.push(acceptedBy.get(minute) ?? 0)
    series.delivered.push(d?.n ?? 0)
    series.p50.push(d?.p50 ?? null)
    series.p95.push(d?.p95 ?? null)
  }
  const l = latency.rows[0]
  return {
    at: c.at,
    devicesOnline: c.devicesOnline,
    nodesRunning: c.nodesRunning,
    waiting: c.waiting,
    expiredLastDay: c.expiredLastDay,
    latency: { windowMinutes: LATENCY_WINDOW_MINUTES, p50: l.p50, p95: l.p95, samples: l.samples },
    lastHour: series
  }
}
