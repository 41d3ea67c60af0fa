-- The webhook outbox holds one row per statement and event type instead of one row per event.
--
-- Why: with an endpoint for every event type, the per-event rows of 0008 slowed batched sends by
-- 13 % on a 2-core machine (bench scenario 7, target ≤ 10 %). Their cost was per row, not per
-- byte: each event was a heap tuple and an index entry written by the trigger, read again and
-- turned into JSON by Postgres when a batch was formed, deleted by pruning, then vacuumed, each
-- with its WAL (~25 µs of Postgres CPU an event in all). A state flush of 500 deliveries now
-- writes one row holding 500 events as arrays; Postgres moves arrays, and the sender writes the
-- JSON (server/webhooks/payload.ts).
--
-- Order and exactly-once reading are as before: rows are read in (tx, seq) order below the
-- snapshot's xmin (see 0008), and a batch is a range of whole rows.

create table webhook_outbox (
  seq bigint generated always as identity,
  tx xid8 not null default pg_current_xact_id(),
  recorded_at timestamptz not null default now(),
  type text not null,
  -- how many events the row holds: the length of each array below
  events integer not null check (events > 0),
  -- per event, in the same order in every array: when it happened, in ms since the epoch (the
  -- JSON's precision, and written to it without parsing a timestamp)
  at_ms bigint[] not null,
  -- null for device.* events
  message_ids uuid[],
  device_ids text[] not null,
  user_ids text[] not null,
  -- null when no event of the row has a reason; else one per event, null where it has none
  reasons text[],
  -- message.replaced only
  replaced_by uuid[]
);
create index webhook_outbox_order on webhook_outbox (tx, seq);
-- a row of 500 events is ~25 KB, kept out of line in TOAST; uncompressed, since compressing it
-- costs CPU on every insert for arrays that are mostly uuids
alter table webhook_outbox
  alter column at_ms set storage external,
  alter column message_ids set storage external,
  alter column device_ids set storage external,
  alter column user_ids set storage external,
  alter column reasons set storage external,
  alter column replaced_by set storage external;

-- An event's time as the JSON has it: ms since the epoch, truncated (as the `.MS` of 0008's JSON)
create function herald_epoch_ms(t timestamptz) returns bigint language sql immutable parallel safe as $$
  select floor(extract(epoch from t) * 1000)::bigint
$$;

-- A batch not yet attempted is written again from the outbox when it is retried; the event ids
-- of 0008's rows were `evt_<seq>`, and a converted row's differ (below). So that a receiver sees
-- the same ids and body again, such a batch gets its body stored now, written as 0008 wrote it.
update webhook_deliveries d set body = (
  select '{"timestamp":"' || to_char(d.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ||
    '","events":[' || string_agg(format(
      '{"id":"evt_%s","type":"%s","timestamp":"%s","data":{"messageId":%s,"deviceId":%s,"userId":%s,' ||
        '"reason":%s,"replacedBy":%s}}',
      e.seq, e.type, to_char(e.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      coalesce(to_json(e.message_id)::text, 'null'), to_json(e.device_id), to_json(e.user_id),
      coalesce(to_json(e.reason)::text, 'null'), coalesce(to_json(e.replaced_by)::text, 'null')),
      ',' order by e.tx, e.seq) || ']}'
  from webhook_events e join webhook_endpoints ep on ep.id = d.endpoint_id
  where (e.tx, e.seq) >= (d.first_tx, d.first_seq) and (e.tx, e.seq) <= (d.last_tx, d.last_seq)
    and e.type = any(ep.events))
where d.status = 'pending' and d.body is null;

-- Events not yet read become rows of one event each, in the same order, numbered after every seq
-- 0008 gave out: a row's events have ids from seq × 1000, which must not repeat an id of 0008
-- (`evt_<seq>`) that a receiver has seen. The endpoints' cursors move to the new numbers.
create temporary table herald_renumbered as
select e.*, (select greatest(max(seq), (select last_value from webhook_events_seq_seq)) from webhook_events)
            + row_number() over (order by e.tx, e.seq) as new_seq
from webhook_events e;

insert into webhook_outbox
  (seq, tx, recorded_at, type, events, at_ms, message_ids, device_ids, user_ids, reasons, replaced_by)
overriding system value
select r.new_seq, r.tx, r.at, r.type, 1, array[herald_epoch_ms(r.at)],
       case when r.message_id is not null then array[r.message_id] end, array[r.device_id], array[r.user_id],
       case when r.reason is not null then array[r.reason] end,
       case when r.replaced_by is not null then array[r.replaced_by] end
from herald_renumbered r;

select setval(pg_get_serial_sequence('webhook_outbox', 'seq'),
              coalesce((select max(new_seq) from herald_renumbered), (select last_value from webhook_events_seq_seq)));

-- A cursor is (tx, seq): rows of another transaction than the cursor's are ordered by tx alone,
-- and those of its own keep their order under the new numbers.
update webhook_endpoints ep set cursor_seq = coalesce(
  (select max(r.new_seq) from herald_renumbered r where r.tx = ep.cursor_tx and r.seq <= ep.cursor_seq), 0);
drop table herald_renumbered;

-- Most events come from state flushes of hundreds of deliveries; a row holds at most this many
-- (a revoke of a topic message to 100,000 devices is one statement), so a batch of whole rows
-- stays near the sender's size per POST. Fewer than 1,000: an event's id is its row's seq × 1000
-- plus its index in the row (server/webhooks/payload.ts).
create function herald_webhook_row_events() returns integer language sql immutable parallel safe as $$
  select 500
$$;

-- As 0008's, with one row per statement, event type and 500 events. The join of old and new rows
-- and the branches are unchanged (see 0008 for why each is so).
create or replace function herald_webhook_delivery_events() returns trigger language plpgsql
set enable_nestloop = off set jit = off as $$
declare
  wanted text[] := herald_webhook_types_wanted();
begin
  if wanted is null or not exists (
    select 1 from new_rows n
    where n.status in ('delivered', 'expired', 'replaced', 'revoked')
       or n.displayed_at is not null or n.opened_at is not null or n.dismissed_at is not null) then
    return null;
  end if;
  -- Rows go in by rank, so within a statement the status events come first and a delivery's
  -- `delivered` precedes its receipts; within a row, events are in no particular order.
  insert into webhook_outbox (type, events, at_ms, message_ids, device_ids, user_ids, reasons, replaced_by)
  select e.type, count(*), array_agg(herald_epoch_ms(e.at)), array_agg(e.message_id), array_agg(e.device_id),
         array_agg(e.user_id),
         case when count(e.reason) > 0 then array_agg(e.reason) end,
         case when count(e.replaced_by) > 0 then array_agg(e.replaced_by) end
  from (
    select b.*, row_number() over () as i from (
      select 1 as rank, 'message.' || n.status as type,
             case n.status
               when 'delivered' then n.delivered_at
               when 'expired' then case when n.reason = 'ttl-ended' then n.expires_at else now() end
               else now() end as at,
             n.message_id, n.device_id, n.user_id, n.reason, n.replaced_by
      from new_rows n join old_rows o on o.seq = n.seq
      where n.status in ('delivered', 'expired', 'replaced', 'revoked') and n.status <> o.status
        and 'message.' || n.status = any(wanted)
      union all
      select 2, 'message.displayed', n.displayed_at, n.message_id, n.device_id, n.user_id, null, null
      from new_rows n join old_rows o on o.seq = n.seq
      where n.displayed_at is not null and o.displayed_at is null and 'message.displayed' = any(wanted)
      union all
      select 3, 'message.opened', n.opened_at, n.message_id, n.device_id, n.user_id, null, null
      from new_rows n join old_rows o on o.seq = n.seq
      where n.opened_at is not null and o.opened_at is null and 'message.opened' = any(wanted)
      union all
      select 4, 'message.dismissed', n.dismissed_at, n.message_id, n.device_id, n.user_id, null, null
      from new_rows n join old_rows o on o.seq = n.seq
      where n.dismissed_at is not null and o.dismissed_at is null and 'message.dismissed' = any(wanted)
    ) b
  ) e
  group by e.rank, e.type, (e.i - 1) / herald_webhook_row_events()
  order by e.rank, min(e.i);
  return null;
end
$$;

create or replace function herald_webhook_device_event() returns trigger language plpgsql as $$
declare
  type text := case when new.connected_node is null then 'device.offline' else 'device.online' end;
begin
  if type = any(herald_webhook_types_wanted()) then
    insert into webhook_outbox (type, events, at_ms, device_ids, user_ids)
    values (type, 1,
            array[herald_epoch_ms(case when new.connected_node is null then now() else coalesce(new.connected_at, now()) end)],
            array[new.device_id], array[new.user_id]);
  end if;
  return null;
end
$$;

drop table webhook_events;
