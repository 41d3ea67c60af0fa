-- The admin UI (server/admin/): its sessions, and the indexes its queries need.

-- Admin sessions, shared by every Herald process on this database. The cookie carries a random
-- id; only its sha256 is stored, so a read of this table cannot be replayed as a login.
create table admin_sessions (
  id_hash text primary key,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  -- idle expiry, pushed forward on use; never beyond created_at + the absolute lifetime
  expires_at timestamptz not null,
  ip text,
  user_agent text
);
create index admin_sessions_expires on admin_sessions (expires_at);

-- The delivery log grouped per message, newest first. Its keyset is (accepted_at, id) on
-- messages, which every delivery copies as (queued_at, message_id): the same order whether a
-- page is read from messages (no filter, title text, time range) or from the deliveries of one
-- user, device or status (deliveries_log_user/_device/_status of 0001). Each index lets a page
-- seek straight to its cursor.
create index messages_admin_log on messages (accepted_at, id);

-- Overview: deliveries per minute and accept -> PUBACK latency over the last hour.
create index deliveries_delivered_at on deliveries (delivered_at) where delivered_at is not null;
-- Overview: expired in the last day (only rows that expired are in it).
create index deliveries_expired on deliveries (expires_at) where status = 'expired';

-- The log's "title contains" filter: a trigram index finds rare words without reading every
-- message. pg_trgm ships with Postgres (contrib) and is a trusted extension (PG 13+), so a
-- database owner may create it; where it is missing or not allowed, the filter still works,
-- by scanning messages.
do $$
begin
  create extension if not exists pg_trgm;
exception when others then
  raise notice 'pg_trgm is not available (%): title search in the admin log scans messages', sqlerrm;
end
$$;
do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_trgm') then
    create index messages_title_trgm on messages using gin (title gin_trgm_ops);
  end if;
end
$$;
