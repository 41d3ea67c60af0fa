-- Admin password guessing, limited per client address (server/auth/passwordLimiter.ts, SQL in
-- server/store/loginAttempts.ts). Kept here rather than in memory so the limit holds across
-- restarts and across every Herald process on this database.

-- One row per address with failures since its last success, or with a check running now. A
-- success deletes the row; the maintenance sweep deletes rows untouched for a day.
create table login_attempts (
  -- the client address (an IPv6 address by its /64), as the limiter keys it
  address text primary key,
  -- wrong passwords since the last right one
  failures integer not null default 0,
  -- checks reserved and not yet recorded; only counted while lease_until is ahead, so a
  -- process that died mid-check cannot hold the address's slots for ever
  in_flight integer not null default 0,
  lease_until timestamptz,
  -- no check for this address before then (the backoff after the free failures)
  blocked_until timestamptz,
  updated_at timestamptz not null default now()
);
create index login_attempts_updated_at on login_attempts (updated_at);
