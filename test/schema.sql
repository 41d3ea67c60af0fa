-- Herald's schema after every migration, read from the catalogue (test/helpers/schema.ts).
-- test/migrations.test.ts fails when migrations produce anything else. After changing a migration
-- on purpose, update it with `npm run schema:snapshot` and commit it with the migration.

create extension pg_trgm;
create table admin_sessions (
  id_hash text not null,
  created_at timestamp with time zone default now() not null,
  last_seen_at timestamp with time zone default now() not null,
  expires_at timestamp with time zone not null,
  ip text,
  user_agent text
);
create table api_keys (
  id uuid default gen_random_uuid() not null,
  name text not null,
  prefix text not null,
  key_hash text not null,
  created_at timestamp with time zone default now() not null,
  last_used_at timestamp with time zone,
  revoked_at timestamp with time zone
);
create table deliveries (
  seq bigint generated always as identity not null,
  message_id uuid not null,
  device_id text not null,
  user_id text not null,
  status text not null,
  collapse_key text,
  expires_at timestamp with time zone not null,
  queued_at timestamp with time zone not null,
  sent_at timestamp with time zone,
  delivered_at timestamp with time zone,
  displayed_at timestamp with time zone,
  opened_at timestamp with time zone,
  dismissed_at timestamp with time zone,
  reason text,
  replaced_by uuid
);
create table devices (
  device_id text not null,
  user_id text not null,
  persistent boolean default false not null,
  connected_node text,
  connected_at timestamp with time zone,
  last_seen_at timestamp with time zone,
  created_at timestamp with time zone default now() not null,
  connection_id text
);
create table idempotency_keys (
  api_key_id uuid not null,
  key text not null,
  request_hash text not null,
  status integer not null,
  response jsonb not null,
  created_at timestamp with time zone default now() not null
);
create table live_subscriptions (
  device_id text not null,
  topic text not null,
  node_id text not null
);
create table login_attempts (
  address text not null,
  failures integer default 0 not null,
  in_flight integer default 0 not null,
  lease_until timestamp with time zone,
  blocked_until timestamp with time zone,
  updated_at timestamp with time zone default now() not null
);
create table messages (
  id uuid not null,
  seq bigint generated always as identity not null,
  target_kind text not null,
  target jsonb not null,
  topic text,
  title text,
  body text,
  data jsonb,
  priority text not null,
  collapse_key text,
  ttl integer not null,
  accepted_at timestamp with time zone not null,
  expires_at timestamp with time zone not null,
  payload bytea not null,
  api_key_id uuid,
  recipients integer not null,
  revoked_at timestamp with time zone
);
create table mqtt_incoming (
  client_id text not null,
  message_id integer not null,
  packet jsonb not null,
  payload bytea,
  payload_is_text boolean default false not null
);
create table mqtt_outgoing (
  id bigint generated always as identity not null,
  client_id text not null,
  broker_id text,
  broker_counter bigint,
  message_id integer,
  packet jsonb not null,
  payload bytea,
  payload_is_text boolean default false not null
);
create table mqtt_retained (
  topic text not null,
  packet jsonb not null,
  payload bytea not null,
  payload_is_text boolean default false not null
);
create table mqtt_subscriptions (
  id bigint generated always as identity not null,
  client_id text not null,
  topic text not null,
  qos smallint not null,
  rh smallint,
  rap boolean,
  nl boolean,
  subscription_identifier integer
);
create table mqtt_wills (
  client_id text not null,
  broker_id text not null,
  packet jsonb not null,
  payload bytea,
  payload_is_text boolean default false not null
);
create table nodes (
  id text not null,
  started_at timestamp with time zone default now() not null,
  heartbeat_at timestamp with time zone default now() not null,
  version text,
  hostname text,
  pid integer,
  connections integer default 0 not null,
  gone_at timestamp with time zone
);
create table schema_migrations (
  name text not null,
  applied_at timestamp with time zone default now() not null
);
create table settings (
  key text not null,
  value text not null,
  created_at timestamp with time zone default now() not null
);
create table webhook_deliveries (
  id text not null,
  endpoint_id uuid not null,
  created_at timestamp with time zone default now() not null,
  event_count integer not null,
  first_tx xid8 not null,
  first_seq bigint not null,
  last_tx xid8 not null,
  last_seq bigint not null,
  body text,
  status text not null,
  attempts integer default 0 not null,
  next_attempt_at timestamp with time zone default now() not null,
  failing_since timestamp with time zone,
  last_attempt_at timestamp with time zone,
  last_status integer,
  last_error text,
  last_response text,
  delivered_at timestamp with time zone
);
create table webhook_endpoints (
  id uuid default gen_random_uuid() not null,
  url text not null,
  description text,
  events text[] not null,
  secret text not null,
  created_at timestamp with time zone default now() not null,
  disabled_at timestamp with time zone,
  disabled_reason text,
  cursor_tx xid8 default pg_snapshot_xmin(pg_current_snapshot()) not null,
  cursor_seq bigint default 0 not null
);
create table webhook_outbox (
  seq bigint generated always as identity not null,
  tx xid8 default pg_current_xact_id() not null,
  recorded_at timestamp with time zone default now() not null,
  type text not null,
  events integer not null,
  at_ms bigint[] not null,
  message_ids uuid[],
  device_ids text[] not null,
  user_ids text[] not null,
  reasons text[],
  replaced_by uuid[]
);
alter table admin_sessions add constraint admin_sessions_pkey PRIMARY KEY (id_hash);
alter table api_keys add constraint api_keys_key_hash_key UNIQUE (key_hash);
alter table api_keys add constraint api_keys_pkey PRIMARY KEY (id);
alter table deliveries add constraint deliveries_message_id_device_id_key UNIQUE (message_id, device_id);
alter table deliveries add constraint deliveries_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE;
alter table deliveries add constraint deliveries_pkey PRIMARY KEY (seq);
alter table deliveries add constraint deliveries_reason_check CHECK ((reason = ANY (ARRAY['ttl-ended'::text, 'connection-ended'::text, 'clean-session-ended'::text, 'collapsed'::text, 'message-revoked'::text, 'device-removed'::text, 'admin-message-revoked'::text, 'admin-device-removed'::text, 'session-discarded'::text])));
alter table deliveries add constraint deliveries_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'sent'::text, 'delivered'::text, 'expired'::text, 'replaced'::text, 'revoked'::text])));
alter table devices add constraint devices_pkey PRIMARY KEY (device_id);
alter table idempotency_keys add constraint idempotency_keys_api_key_id_fkey FOREIGN KEY (api_key_id) REFERENCES api_keys(id) ON DELETE CASCADE;
alter table idempotency_keys add constraint idempotency_keys_pkey PRIMARY KEY (api_key_id, key);
alter table live_subscriptions add constraint live_subscriptions_pkey PRIMARY KEY (device_id, topic);
alter table login_attempts add constraint login_attempts_pkey PRIMARY KEY (address);
alter table messages add constraint messages_api_key_id_fkey FOREIGN KEY (api_key_id) REFERENCES api_keys(id) ON DELETE SET NULL;
alter table messages add constraint messages_pkey PRIMARY KEY (id);
alter table messages add constraint messages_priority_check CHECK ((priority = ANY (ARRAY['normal'::text, 'high'::text])));
alter table messages add constraint messages_seq_key UNIQUE (seq);
alter table messages add constraint messages_target_kind_check CHECK ((target_kind = ANY (ARRAY['user'::text, 'users'::text, 'topic'::text])));
alter table messages add constraint messages_ttl_check CHECK ((ttl >= 0));
alter table mqtt_incoming add constraint mqtt_incoming_pkey PRIMARY KEY (client_id, message_id);
alter table mqtt_outgoing add constraint mqtt_outgoing_pkey PRIMARY KEY (id);
alter table mqtt_retained add constraint mqtt_retained_pkey PRIMARY KEY (topic);
alter table mqtt_subscriptions add constraint mqtt_subscriptions_client_id_topic_key UNIQUE (client_id, topic);
alter table mqtt_subscriptions add constraint mqtt_subscriptions_pkey PRIMARY KEY (id);
alter table mqtt_subscriptions add constraint mqtt_subscriptions_qos_check CHECK (((qos >= 0) AND (qos <= 2)));
alter table mqtt_wills add constraint mqtt_wills_pkey PRIMARY KEY (client_id);
alter table nodes add constraint nodes_pkey PRIMARY KEY (id);
alter table schema_migrations add constraint schema_migrations_pkey PRIMARY KEY (name);
alter table settings add constraint settings_pkey PRIMARY KEY (key);
alter table webhook_deliveries add constraint webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints(id) ON DELETE CASCADE;
alter table webhook_deliveries add constraint webhook_deliveries_pkey PRIMARY KEY (id);
alter table webhook_deliveries add constraint webhook_deliveries_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])));
alter table webhook_endpoints add constraint webhook_endpoints_pkey PRIMARY KEY (id);
alter table webhook_outbox add constraint webhook_outbox_events_check CHECK ((events > 0));
CREATE INDEX admin_sessions_expires ON public.admin_sessions USING btree (expires_at);
CREATE INDEX deliveries_delivered_at ON public.deliveries USING btree (delivered_at) WHERE (delivered_at IS NOT NULL);
CREATE INDEX deliveries_expired ON public.deliveries USING btree (expires_at) WHERE (status = 'expired'::text);
CREATE INDEX deliveries_expiring ON public.deliveries USING btree (expires_at) WHERE (status = ANY (ARRAY['queued'::text, 'sent'::text]));
CREATE INDEX deliveries_log ON public.deliveries USING btree (queued_at, seq) INCLUDE (message_id);
CREATE INDEX deliveries_log_device ON public.deliveries USING btree (device_id, queued_at, seq) INCLUDE (message_id);
CREATE INDEX deliveries_log_status ON public.deliveries USING btree (status, queued_at, seq) INCLUDE (message_id);
CREATE INDEX deliveries_log_user ON public.deliveries USING btree (user_id, queued_at, seq) INCLUDE (message_id);
CREATE INDEX deliveries_pending ON public.deliveries USING btree (device_id, seq) WHERE (status = ANY (ARRAY['queued'::text, 'sent'::text]));
CREATE INDEX devices_online ON public.devices USING btree (connected_node) WHERE (connected_node IS NOT NULL);
CREATE INDEX devices_user ON public.devices USING btree (user_id);
CREATE INDEX idempotency_keys_created ON public.idempotency_keys USING btree (created_at);
CREATE INDEX live_subscriptions_topic ON public.live_subscriptions USING btree (topic);
CREATE INDEX login_attempts_updated_at ON public.login_attempts USING btree (updated_at);
CREATE INDEX messages_admin_log ON public.messages USING btree (accepted_at, seq);
CREATE INDEX messages_title_trgm ON public.messages USING gin (title gin_trgm_ops);
CREATE INDEX mqtt_outgoing_message ON public.mqtt_outgoing USING btree (client_id, message_id) WHERE (message_id IS NOT NULL);
CREATE INDEX mqtt_outgoing_queue ON public.mqtt_outgoing USING btree (client_id, id);
CREATE INDEX mqtt_subscriptions_topic ON public.mqtt_subscriptions USING btree (topic);
CREATE INDEX mqtt_wills_broker ON public.mqtt_wills USING btree (broker_id);
CREATE INDEX webhook_deliveries_due ON public.webhook_deliveries USING btree (next_attempt_at) WHERE (status = 'pending'::text);
CREATE INDEX webhook_deliveries_endpoint ON public.webhook_deliveries USING btree (endpoint_id, created_at DESC);
CREATE INDEX webhook_outbox_order ON public.webhook_outbox USING btree (tx, seq);
CREATE OR REPLACE FUNCTION public.herald_epoch_ms(t timestamp with time zone)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select floor(extract(epoch from t) * 1000)::bigint
$function$;
CREATE OR REPLACE FUNCTION public.herald_webhook_delivery_events()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'off'
 SET jit TO 'off'
AS $function$
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
$function$;
CREATE OR REPLACE FUNCTION public.herald_webhook_device_event()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
$function$;
CREATE OR REPLACE FUNCTION public.herald_webhook_row_events()
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select 500
$function$;
CREATE OR REPLACE FUNCTION public.herald_webhook_types_wanted()
 RETURNS text[]
 LANGUAGE sql
 STABLE
AS $function$
  select array_agg(distinct t) from webhook_endpoints, unnest(events) as t
$function$;
CREATE TRIGGER deliveries_webhook_events AFTER UPDATE ON public.deliveries REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_webhook_delivery_events();
CREATE TRIGGER devices_webhook_online AFTER INSERT ON public.devices FOR EACH ROW WHEN ((new.connected_node IS NOT NULL)) EXECUTE FUNCTION herald_webhook_device_event();
CREATE TRIGGER devices_webhook_online_offline AFTER UPDATE OF connected_node ON public.devices FOR EACH ROW WHEN (((old.connected_node IS NULL) <> (new.connected_node IS NULL))) EXECUTE FUNCTION herald_webhook_device_event();
