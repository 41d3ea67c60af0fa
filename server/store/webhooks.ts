import { inTransaction, type Pool } from '../db/pool.js'
import type { WebhookDelivery, WebhookEndpoint, WebhookEventType } from '../wire.js'

// Webhook endpoints, the outbox of events the triggers of migrations/0008_webhooks.sql write,
// and the batches (webhook_deliveries) formed from it and sent by webhooks/sender.ts.

const ENDPOINT_COLUMNS = `e.id, e.url, e.description, e.events,
  case when e.disabled_at is null then 'enabled' else 'disabled' end as status,
  e.created_at as "createdAt", e.disabled_at as "disabledAt", e.disabled_reason as "disabledReason",
  (select min(d.failing_since) from webhook_deliveries d
    where d.endpoint_id = e.id and d.status = 'pending') as "failingSince",
  (select max(d.delivered_at) from webhook_deliveries d where d.endpoint_id = e.id) as "lastDeliveredAt",
  (select count(*)::int from webhook_deliveries d
    where d.endpoint_id = e.id and d.status = 'pending') as "pendingDeliveries",
  (select count(*)::int from webhook_deliveries d
    where d.endpoint_id = e.id and d.status = 'failed') as "failedDeliveries"`

export async function insertWebhookEndpoint (pool: Pool,
  endpoint: { url: string, description: string | null, events: WebhookEventType[], secret: string }
): Promise<WebhookEndpoint> {
  const { rows } = await pool.query<WebhookEndpoint>(
    `with e as (insert into webhook_endpoints (url, description, events, secret) values ($1, $2, $3, $4) returning *)
     select ${ENDPOINT_COLUMNS} from e`,
    [endpoint.url, endpoint.description, endpoint.events, endpoint.secret])
  return rows[0]
}

export async function listWebhookEndpoints (pool: Pool): Promise<WebhookEndpoint[]> {
  const { rows } = await pool.query<WebhookEndpoint>(
    `select ${ENDPOINT_COLUMNS} from webhook_endpoints e order by e.created_at desc, e.id`)
  return rows
}

export async function getWebhookEndpoint (pool: Pool, id: string): Promise<WebhookEndpoint | undefined> {
  const { rows } = await pool.query<WebhookEndpoint>(
    `select ${ENDPOINT_COLUMNS} from webhook_endpoints e where e.id = $1`, [id])
  return rows[0]
}

/** Its batches go with it. False when there is no such endpoint. */
export async function deleteWebhookEndpoint (pool: Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query('delete from webhook_endpoints where id = $1', [id])
  return (rowCount ?? 0) > 0
}

/**
 * Enables an endpoint again (a disabled one resumes where it stopped reading: events recorded
 * since are sent, as far as they are still kept). Undefined when there is no such endpoint.
 */
export async function enableWebhookEndpoint (pool: Pool, id: string): Promise<WebhookEndpoint | undefined> {
  const { rows } = await pool.query<WebhookEndpoint>(
    `with e as (update webhook_endpoints set disabled_at = null, disabled_reason = null where id = $1 returning *)
     select ${ENDPOINT_COLUMNS} from e`, [id])
  return rows[0]
}

const DELIVERY_COLUMNS = `id, status, created_at as "createdAt", event_count as events, attempts,
  case when status = 'pending' then next_attempt_at end as "nextAttemptAt", failing_since as "failingSince",
  last_attempt_at as "lastAttemptAt", last_status as "lastStatus", last_error as "lastError",
  last_response as "lastResponse", delivered_at as "deliveredAt"`

/** An endpoint's batches, newest first; undefined when there is no such endpoint. */
export async function listWebhookDeliveries (pool: Pool, endpointId: string,
  filter: { status?: WebhookDelivery['status'], limit: number }): Promise<WebhookDelivery[] | undefined> {
  const { rows } = await pool.query<WebhookDelivery & { found: boolean }>(
    `select true as found, d.* from webhook_endpoints e
     left join lateral (
       select ${DELIVERY_COLUMNS} from webhook_deliveries
       where endpoint_id = e.id and ($2::text is null or status = $2)
       order by created_at desc, id limit $3
     ) d on true
     where e.id = $1`, [endpointId, filter.status ?? null, filter.limit])
  if (rows.length === 0) return undefined
  return rows.filter(r => r.id !== null).map(({ found: _found, ...d }) => d)
}

/**
 * Sends a batch again from its first attempt (a failed one, or a pending one now rather than at
 * its next retry). False when the endpoint has no such batch, or it was delivered.
 */
export async function replayWebhookDelivery (pool: Pool, endpointId: string, deliveryId: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `update webhook_deliveries set status = 'pending', next_attempt_at = now(), failing_since = null, attempts = 0
     where endpoint_id = $1 and id = $2 and status <> 'delivered'`, [endpointId, deliveryId])
  return (rowCount ?? 0) > 0
}

// ---- the sender's side ----

/** An endpoint as the sender needs it. */
export interface EndpointTarget { id: string, url: string, secret: string }

/** One row of the outbox as the sender gets it (migrations/0009): a row's events, one per array index. */
export type OutboxRow = [
  seq: number, type: WebhookEventType, atMs: number[], messageIds: string[] | null, deviceIds: string[],
  userIds: string[], reasons: Array<string | null> | null, replacedBy: Array<string | null> | null
]

/**
 * A batch ready to send: its stored body (once an attempt failed), or the outbox rows it holds
 * and when it was formed, from which webhooks/payload.ts writes the same body every time.
 */
export interface DueBatch {
  id: string
  events: number
  failingSince: Date | null
  attempts: number
  body: string | null
  formedAtMs: number
  rows: OutboxRow[] | null
}

/** Rows visible to a reader: those of transactions older than every one still running (see migration 0008). */
const SETTLED = 'e.tx < pg_snapshot_xmin(pg_current_snapshot())'

/** An outbox row `e` as an OutboxRow, aggregated in order into one JSON array (which pg parses). */
const OUTBOX_ROWS = `json_agg(json_build_array(e.seq, e.type, e.at_ms, e.message_ids, e.device_ids, e.user_ids,
  e.reasons, e.replaced_by) order by e.tx, e.seq)`

/**
 * Endpoints with something to send now: a pending batch that is due (a retry, a replay), or, for
 * an enabled endpoint with no pending batch, settled events it wants past its cursor.
 */
export async function endpointsWithWork (pool: Pool): Promise<EndpointTarget[]> {
  const { rows } = await pool.query<EndpointTarget>({
    name: 'herald_webhook_endpoints_with_work',
    text: `select ep.id, ep.url, ep.secret from webhook_endpoints ep
     where exists (select 1 from webhook_deliveries d
                   where d.endpoint_id = ep.id and d.status = 'pending' and d.next_attempt_at <= now())
        or (ep.disabled_at is null
            and not exists (select 1 from webhook_deliveries d where d.endpoint_id = ep.id and d.status = 'pending')
            and exists (select 1 from webhook_outbox e
                        where (e.tx, e.seq) > (ep.cursor_tx, ep.cursor_seq) and ${SETTLED}
                          and e.type = any(ep.events)))`
  })
  return rows
}

/**
 * The endpoint's oldest pending batch that is due, if any: with its stored body, or, for a batch
 * whose first attempt was never recorded (its leader died mid-POST), the outbox rows its body is
 * written from again.
 */
export async function dueWebhookDelivery (pool: Pool, endpointId: string): Promise<DueBatch | undefined> {
  const { rows } = await pool.query<DueBatch>({
    name: 'herald_webhook_due_delivery',
    text: `select d.id, d.body, herald_epoch_ms(d.created_at) as "formedAtMs", d.event_count as events,
             d.failing_since as "failingSince", d.attempts,
             case when d.body is null then (
               select ${OUTBOX_ROWS}
               from webhook_outbox e join webhook_endpoints ep on ep.id = d.endpoint_id
               where (e.tx, e.seq) >= (d.first_tx, d.first_seq) and (e.tx, e.seq) <= (d.last_tx, d.last_seq)
                 and e.type = any(ep.events)
             ) end as rows
           from webhook_deliveries d
           where d.endpoint_id = $1 and d.status = 'pending' and d.next_attempt_at <= now()
           order by d.created_at, d.id limit 1`,
    values: [endpointId]
  })
  return rows[0]
}

/**
 * One statement forms a batch from the outbox: the settled rows the endpoint wants after its
 * cursor, in order, whole, up to `$4` events (the first row even if it alone holds more; the
 * trigger keeps rows at 500 events); they are returned, and the batch is recorded with the range
 * of rows it holds (its body is stored only once an attempt fails: migrations/0008). The cursor
 * moves past the last row taken when more wanted rows wait, else past every settled row (of any
 * type) there is. All of it reads one snapshot, so the rows taken and the cursor's move agree.
 */
const FORM_BATCH = `
  with settled as (
    select pg_snapshot_xmin(pg_current_snapshot()) as xmin
  ), candidates as (
    select c.tx, c.seq, c.events, sum(c.events) over (order by c.tx, c.seq) as upto
    from (select e.tx, e.seq, e.events from webhook_outbox e, settled
          where (e.tx, e.seq) > ($2::xid8, $3::bigint) and e.tx < settled.xmin and e.type = any($5::text[])
          order by e.tx, e.seq limit $4) c
  ), picked as (
    select tx, seq, events from candidates where upto <= $4 or upto = events
  ), first_picked as (
    select tx, seq from picked order by tx, seq limit 1
  ), last_picked as (
    select tx, seq from picked order by tx desc, seq desc limit 1
  ), last_settled as (
    select e.tx, e.seq from webhook_outbox e, settled
    where (e.tx, e.seq) > ($2::xid8, $3::bigint) and e.tx < settled.xmin
    order by e.tx desc, e.seq desc limit 1
  ), more_wanted as (
    select (select count(*) from candidates) = $4
        or (select count(*) from picked) < (select count(*) from candidates) as yes
  ), cursor_to as (
    select * from last_picked where (select yes from more_wanted)
    union all
    select * from last_settled where not (select yes from more_wanted)
  ), moved as (
    update webhook_endpoints ep set cursor_tx = c.tx, cursor_seq = c.seq from cursor_to c where ep.id = $1
  ), joined as (
    select clock_timestamp() as at, coalesce(sum(events), 0)::int as n from picked
  ), formed as (
    insert into webhook_deliveries
      (id, endpoint_id, created_at, event_count, first_tx, first_seq, last_tx, last_seq, status)
    select $6, $1, j.at, j.n, f.tx, f.seq, l.tx, l.seq, 'pending'
    from joined j, first_picked f, last_picked l
    returning id
  )
  select f.id, herald_epoch_ms(j.at) as "formedAtMs", j.n as events,
         (select ${OUTBOX_ROWS} from webhook_outbox e join picked p on (p.tx, p.seq) = (e.tx, e.seq)) as rows
  from formed f, joined j`

/**
 * Forms the endpoint's next batch from the outbox (FORM_BATCH): up to `maxEvents` settled events
 * it wants, in order, after its cursor. Nothing is formed while the endpoint has a pending batch
 * (its events go in order) or is disabled. Undefined when there was nothing to form.
 */
export async function formWebhookDelivery (pool: Pool, endpointId: string, id: string,
  maxEvents: number): Promise<DueBatch | undefined> {
  // no JIT: the statement is small, and its estimated cost could start a compile of ~50 ms
  return inTransaction(pool, async client => {
    type Cursor = { events: WebhookEventType[], cursorTx: string, cursorSeq: number }
    const { rows: [endpoint] } = await client.query<Cursor>(
      `select events, cursor_tx::text as "cursorTx", cursor_seq as "cursorSeq" from webhook_endpoints ep
       where id = $1 and disabled_at is null
         and not exists (select 1 from webhook_deliveries d where d.endpoint_id = ep.id and d.status = 'pending')
       for update`, [endpointId])
    if (endpoint === undefined) return undefined
    const { rows: [formed] } = await client.query<Pick<DueBatch, 'id' | 'formedAtMs' | 'events' | 'rows'>>({
      name: 'herald_webhook_form_batch',
      text: FORM_BATCH,
      values: [endpointId, endpoint.cursorTx, endpoint.cursorSeq, maxEvents, endpoint.events, id]
    })
    return formed && { ...formed, body: null, failingSince: null, attempts: 0 }
  }, 'set local jit = off')
}

/** What one attempt to POST a batch got: an answer (any status), or none (`status` undefined). */
export interface AttemptOutcome {
  ok: boolean
  status?: number
  error?: string
  response?: string
}

/**
 * Records an attempt. A success delivers the batch. A failure stores `failedBody`, the body sent,
 * if none is stored yet, and schedules the next attempt at `retryAt`; with no `retryAt` (the retry
 * window is over) the batch fails and its endpoint is disabled with `disableReason`.
 */
export async function recordWebhookAttempt (pool: Pool, endpointId: string, deliveryId: string,
  outcome: AttemptOutcome, retryAt: Date | undefined, disableReason: string, failedBody?: string): Promise<void> {
  const status = outcome.ok ? 'delivered' : retryAt ? 'pending' : 'failed'
  await inTransaction(pool, async client => {
    await client.query({
      name: 'herald_webhook_record_attempt',
      text: `update webhook_deliveries set status = $3, attempts = attempts + 1, last_attempt_at = now(),
               last_status = $4, last_error = $5, last_response = $6,
               next_attempt_at = coalesce($7, next_attempt_at),
               failing_since = case when $3 = 'delivered' then null else coalesce(failing_since, now()) end,
               delivered_at = case when $3 = 'delivered' then now() end,
               body = coalesce(body, $8)
             where endpoint_id = $1 and id = $2`,
      values: [endpointId, deliveryId, status, outcome.status ?? null, outcome.error ?? null,
        outcome.response ?? null, retryAt ?? null, failedBody ?? null]
    })
    if (status === 'failed') {
      await client.query(
        `update webhook_endpoints set disabled_at = now(), disabled_reason = $2
         where id = $1 and disabled_at is null`, [endpointId, disableReason])
    }
  })
}

/**
 * Drops what no endpoint needs: events every endpoint has read (all settled events when there
 * is no endpoint) or older than `keepDays`, except those of a pending batch whose body is not
 * stored (it is written from them), and delivered batches older than `keepDays`.
 */
export async function pruneWebhooks (pool: Pool, keepDays: number, limit: number): Promise<number> {
  const { rowCount } = await pool.query(
    `delete from webhook_outbox where ctid = any(array(
       select e.ctid from webhook_outbox e
       where ${SETTLED} and (
         not exists (select 1 from webhook_endpoints)
         or (e.tx, e.seq) <= (select cursor_tx, cursor_seq from webhook_endpoints
                              order by cursor_tx, cursor_seq limit 1)
         or e.recorded_at < now() - make_interval(days => $1))
         and not exists (select 1 from webhook_deliveries d
                         where d.status = 'pending' and d.body is null and (e.tx, e.seq) >= (d.first_tx, d.first_seq))
       order by e.tx, e.seq limit $2))`, [keepDays, limit])
  await pool.query(
    'delete from webhook_deliveries where status = \'delivered\' and delivered_at < now() - make_interval(days => $1)',
    [keepDays])
  return rowCount ?? 0
}
