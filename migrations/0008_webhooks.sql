-- Delivery webhooks (README "Webhooks"): endpoints that admins register, an outbox of events
-- written by triggers in the transaction of the state change each reports, and the batches
-- (one POST each) sent from that outbox.

create table webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  url text not null,
  description text,
  -- the event types it wants (server/wire.ts WebhookEventType)
  events text[] not null,
  -- whsec_<base64>: kept in clear, since every POST is signed with it; shown once at creation
  secret text not null,
  created_at timestamptz not null default now(),
  -- set when it failed for the whole retry window; nothing is sent to it then
  disabled_at timestamptz,
  disabled_reason text,
  -- how far it has read webhook_events, in (tx, seq) order: see webhook_events
  cursor_tx xid8 not null default pg_snapshot_xmin(pg_current_snapshot()),
  cursor_seq bigint not null default 0
);

-- The outbox. A row is written by the triggers below inside the transaction that changed the
-- delivery or device it reports, so it exists exactly when that change committed. Rows are read
-- in (tx, seq) order, and only those of transactions older than every transaction still running
-- (tx < pg_snapshot_xmin): seq alone is not commit order (a transaction can take seq 10, commit
-- after another took 11 and was read), but once a transaction id is below the snapshot's xmin
-- no row with a smaller (tx, seq) can appear any more. A reader that keeps a (tx, seq) cursor
-- therefore misses nothing and reads nothing twice.
-- No primary key: each row costs one index entry, (tx, seq), the order it is read and pruned in
-- (seq is unique by construction, and an event's id).
create table webhook_events (
  seq bigint generated always as identity,
  tx xid8 not null default pg_current_xact_id(),
  type text not null,
  at timestamptz not null,
  message_id uuid,
  device_id text not null,
  user_id text not null,
  reason text,
  replaced_by uuid
);
create index webhook_events_order on webhook_events (tx, seq);

-- One POST to one endpoint: its id is the webhook-id header, the same on every retry, and its
-- body (the events, in order) is fixed when it is formed. An endpoint has at most one pending
-- batch formed from the outbox at a time, so its events arrive in order.
--
-- The body is stored once an attempt failed (retries and replays send it). Until then it is the
-- events of the endpoint's types from (first_tx, first_seq) to (last_tx, last_seq), written as
-- at formation with created_at as its timestamp: the outbox keeps them (store/webhooks.ts
-- pruneWebhooks), and a leader that died mid-POST leaves the next one the same body to send.
-- Storing every body cost Postgres ~1.3 µs an event and its WAL, for batches nearly all
-- delivered at the first attempt.
create table webhook_deliveries (
  id text primary key,
  endpoint_id uuid not null references webhook_endpoints (id) on delete cascade,
  created_at timestamptz not null default now(),
  event_count integer not null,
  first_tx xid8 not null,
  first_seq bigint not null,
  last_tx xid8 not null,
  last_seq bigint not null,
  body text,
  status text not null check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  -- the first failed attempt of the current run of failures: the retry window counts from here
  failing_since timestamptz,
  last_attempt_at timestamptz,
  last_status integer,
  last_error text,
  last_response text,
  delivered_at timestamptz
);
-- a stored body is a few hundred KB of JSON written once and read on retries: uncompressed
-- (compressing it cost Postgres more CPU than anything else per batch)
alter table webhook_deliveries alter column body set storage external;
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, created_at desc);

-- The event types some endpoint wants; null when none (then nothing is recorded, and a server
-- without webhooks pays one small query per statement that changes deliveries). A disabled
-- endpoint counts: its events are kept (webhooks/sender.ts EVENT_RETENTION_DAYS) and sent once it
-- is enabled again.
create function herald_webhook_types_wanted() returns text[] language sql stable as $$
  select array_agg(distinct t) from webhook_endpoints, unnest(events) as t
$$;

-- Per-device message events, from every statement that changes deliveries: a status that became
-- delivered, expired, replaced or revoked, and a receipt time set for the first time. One
-- statement inserts them all (a statement trigger with transition tables, not one call per row:
-- delivery state is written thousands of rows at a time).
--
-- Transition tables have no statistics: Postgres takes each for one row and joined them with a
-- nested loop, n² comparisons a statement (141 ms for 499 rows; a state flush may hold 5,000),
-- which halved the send rate with an endpoint registered (bench scenario 7). Nested loops are off
-- here, so the join is a hash join; and so is JIT, which that setting's cost penalty would start:
-- Postgres then compiled the trigger's queries, 50 ms a statement (measured with auto_explain).
-- Most statements are claims (queued -> sent), which report nothing: a look at the new rows
-- alone skips the join for them.
create function herald_webhook_delivery_events() returns trigger language plpgsql
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
  -- One branch per kind of event, each filtering the new rows before it joins the old ones: a
  -- statement of deliveries reads only its own branch's rows. (One pass over the rows with four
  -- candidate events each cost 10 µs a row in Postgres 18.) Within a statement the status events
  -- come first, so a delivery's `delivered` precedes its receipts.
  insert into webhook_events (type, at, message_id, device_id, user_id, reason, replaced_by)
  select 'message.' || n.status,
         case n.status
           when 'delivered' then n.delivered_at
           when 'expired' then case when n.reason = 'ttl-ended' then n.expires_at else now() end
           else now() end,
         n.message_id, n.device_id, n.user_id, n.reason, n.replaced_by
  from new_rows n join old_rows o on o.seq = n.seq
  where n.status in ('delivered', 'expired', 'replaced', 'revoked') and n.status <> o.status
    and 'message.' || n.status = any(wanted)
  union all
  select 'message.displayed', n.displayed_at, n.message_id, n.device_id, n.user_id, null, null
  from new_rows n join old_rows o on o.seq = n.seq
  where n.displayed_at is not null and o.displayed_at is null and 'message.displayed' = any(wanted)
  union all
  select 'message.opened', n.opened_at, n.message_id, n.device_id, n.user_id, null, null
  from new_rows n join old_rows o on o.seq = n.seq
  where n.opened_at is not null and o.opened_at is null and 'message.opened' = any(wanted)
  union all
  select 'message.dismissed', n.dismissed_at, n.message_id, n.device_id, n.user_id, null, null
  from new_rows n join old_rows o on o.seq = n.seq
  where n.dismissed_at is not null and o.dismissed_at is null and 'message.dismissed' = any(wanted);
  return null;
end
$$;

create trigger deliveries_webhook_events
  after update on deliveries
  referencing old table as old_rows new table as new_rows
  for each statement execute function herald_webhook_delivery_events();

-- device.online and device.offline: a device's connection appearing or going (a takeover from
-- one process to another is neither). Few rows at a time, so a row trigger that Postgres calls
-- only when the WHEN condition holds.
create function herald_webhook_device_event() returns trigger language plpgsql as $$
declare
  type text := case when new.connected_node is null then 'device.offline' else 'device.online' end;
begin
  if type = any(herald_webhook_types_wanted()) then
    insert into webhook_events (type, at, device_id, user_id)
    values (type, case when new.connected_node is null then now() else coalesce(new.connected_at, now()) end,
            new.device_id, new.user_id);
  end if;
  return null;
end
$$;

create trigger devices_webhook_online
  after insert on devices
  for each row when (new.connected_node is not null)
  execute function herald_webhook_device_event();

create trigger devices_webhook_online_offline
  after update of connected_node on devices
  for each row when ((old.connected_node is null) <> (new.connected_node is null))
  execute function herald_webhook_device_event();
