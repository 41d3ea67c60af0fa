-- Herald's own tables: settings, API keys, devices, messages and their per-device deliveries.
-- aedes' MQTT session state (subscriptions, wills, retained, QoS 2 inbound) lives in 0002.

-- Secrets generated on first start (JWT secret, admin password hash). Never printed twice.
create table settings (
  key text primary key,
  value text not null,
  created_at timestamptz not null default now()
);

create table api_keys (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  -- first characters of the key, so an admin can tell keys apart without the secret
  prefix text not null,
  -- sha256 of the whole key: keys are long random strings, a slow hash adds nothing
  key_hash text not null unique,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

-- One row per MQTT client id that ever connected. A persistent session belongs to user_id.
create table devices (
  device_id text primary key,
  user_id text not null,
  -- true while the device holds a persistent (clean=false) session
  persistent boolean not null default false,
  -- the server process holding the connection, null when offline
  connected_node text,
  connected_at timestamptz,
  last_seen_at timestamptz,
  created_at timestamptz not null default now()
);
create index devices_user on devices (user_id);
create index devices_online on devices (connected_node) where connected_node is not null;

-- Server processes, so a device marked online by a process that died is not believed.
create table nodes (
  id text primary key,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now()
);

create table messages (
  id uuid primary key,
  -- accept order, global: commits are serialised (see store/accept.ts), so seq order is commit order
  seq bigint generated always as identity unique,
  target_kind text not null check (target_kind in ('user', 'users', 'topic')),
  target jsonb not null,
  topic text,
  title text,
  body text,
  data jsonb,
  priority text not null check (priority in ('normal', 'high')),
  collapse_key text,
  ttl integer not null check (ttl >= 0),
  accepted_at timestamptz not null,
  expires_at timestamptz not null,
  -- the exact JSON the devices receive
  payload bytea not null,
  api_key_id uuid references api_keys (id) on delete set null,
  recipients integer not null,
  revoked_at timestamptz
);

create table deliveries (
  -- global accept order; per device, deliveries are sent in seq order
  seq bigint generated always as identity primary key,
  message_id uuid not null references messages (id) on delete cascade,
  device_id text not null,
  user_id text not null,
  status text not null check (status in ('queued', 'sent', 'delivered', 'expired', 'replaced', 'revoked')),
  -- copied from the message so the hot queries touch one table
  collapse_key text,
  expires_at timestamptz not null,
  queued_at timestamptz not null,
  sent_at timestamptz,
  delivered_at timestamptz,
  displayed_at timestamptz,
  opened_at timestamptz,
  dismissed_at timestamptz,
  unique (message_id, device_id)
);
-- a device's queue, in order
create index deliveries_pending on deliveries (device_id, seq) where status in ('queued', 'sent');
-- the expiry sweep
create index deliveries_expiring on deliveries (expires_at) where status in ('queued', 'sent');
-- The delivery log, newest first (queued_at, message_id, device_id), by each filter; the admin
-- UI's per-message log reads the same indexes. Every index here is written on each status
-- change (status is indexed, so no update is HOT): keep the list short.
-- (Collapse finds a device's older rows through deliveries_pending: a queue is short.)
create index deliveries_log on deliveries (queued_at, message_id, device_id);
create index deliveries_log_user on deliveries (user_id, queued_at, message_id);
create index deliveries_log_device on deliveries (device_id, queued_at, message_id);
create index deliveries_log_status on deliveries (status, queued_at, message_id);

create table idempotency_keys (
  api_key_id uuid not null references api_keys (id) on delete cascade,
  key text not null,
  request_hash text not null,
  status integer not null,
  response jsonb not null,
  created_at timestamptz not null default now(),
  primary key (api_key_id, key)
);
create index idempotency_keys_created on idempotency_keys (created_at);
