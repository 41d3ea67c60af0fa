import type { Pool } from '../db/pool.js'

/** The admin-password limiter's state, per client address (server/auth/passwordLimiter.ts has the policy). */

export interface LoginAttemptLimits {
  /** checks of one address that may run at once */
  maxInFlight: number
  /** wrong passwords before any wait */
  freeFailures: number
  /** the wait after the first failure past the free ones; it doubles with each further failure */
  firstBackoffSeconds: number
  maxBackoffSeconds: number
  /** how long a reservation counts as in flight if its result is never recorded (the process died) */
  leaseSeconds: number
}

/** How long an address is remembered after its last attempt; the maintenance sweep forgets it then. */
export const LOGIN_ATTEMPTS_FORGET_HOURS = 24

// checks in flight, not counting reservations whose lease ran out
const LIVE_IN_FLIGHT = '(case when a.lease_until > now() then a.in_flight else 0 end)'

/**
 * Reserves a check for `address` when the policy allows one now: its backoff is over, fewer than
 * `maxInFlight` of its checks are running, and (past the free failures) none is. One statement:
 * the row lock of the upsert makes the decision atomic across every process. A refusal says how
 * many seconds the backoff still runs (0 when the refusal is for checks in flight); that wait is
 * read from the statement's snapshot, so under a race it can be a moment old, never the decision.
 */
export async function reserveLoginAttempt (
  pool: Pool, address: string, limits: LoginAttemptLimits
): Promise<{ allowed: boolean, waitSeconds: number }> {
  const { rows } = await pool.query<{ allowed: boolean, waitSeconds: number }>(
    `with reserved as (
       insert into login_attempts as a (address, in_flight, lease_until)
       values ($1, 1, now() + make_interval(secs => $4))
       on conflict (address) do update
          set in_flight = ${LIVE_IN_FLIGHT} + 1, lease_until = excluded.lease_until, updated_at = now()
        where (a.blocked_until is null or a.blocked_until <= now())
          and ${LIVE_IN_FLIGHT} < $2
          and (${LIVE_IN_FLIGHT} = 0 or a.failures + ${LIVE_IN_FLIGHT} < $3)
       returning 1
     )
     select true as allowed, 0::float8 as "waitSeconds" from reserved
     union all
     select false, greatest(coalesce(extract(epoch from a.blocked_until - now()), 0), 0)::float8
       from login_attempts a
      where a.address = $1 and not exists (select 1 from reserved)`,
    [address, limits.maxInFlight, limits.freeFailures, limits.leaseSeconds])
  // no row: refused in favour of a concurrent first attempt whose row this snapshot cannot see yet
  return rows[0] ?? { allowed: false, waitSeconds: 0 }
}

/**
 * A wrong password: one more failure, and past the free ones a backoff of
 * first × 2^(failures past the free ones), capped. Returns the failure count and the wait now due.
 */
export async function recordLoginFailure (
  pool: Pool, address: string, limits: LoginAttemptLimits
): Promise<{ failures: number, waitSeconds: number }> {
  const { rows } = await pool.query<{ failures: number, waitSeconds: number }>(
    `update login_attempts a
        set failures = a.failures + 1,
            in_flight = greatest(${LIVE_IN_FLIGHT} - 1, 0),
            -- the exponent is capped too, so a long siege cannot overflow the power
            blocked_until = case when a.failures + 1 >= $2 then now() + make_interval(secs =>
              least($3::float8 * power(2, least(a.failures + 1 - $2, 30)), $4::float8)) end,
            updated_at = now()
      where a.address = $1
      returning a.failures, coalesce(extract(epoch from a.blocked_until - now()), 0)::float8 as "waitSeconds"`,
    [address, limits.freeFailures, limits.firstBackoffSeconds, limits.maxBackoffSeconds])
  // no row only if the reservation's lease ran out and a success forgot the address meanwhile
  return rows[0] ?? { failures: 0, waitSeconds: 0 }
}

/** The right password: the address's failures are forgotten (the row too, unless another check is running). */
export async function recordLoginSuccess (pool: Pool, address: string): Promise<void> {
  await pool.query(
    `with forgotten as (
       delete from login_attempts a where a.address = $1 and ${LIVE_IN_FLIGHT} <= 1 returning 1
     )
     update login_attempts a
        set failures = 0, blocked_until = null, in_flight = greatest(${LIVE_IN_FLIGHT} - 1, 0), updated_at = now()
      where a.address = $1 and not exists (select 1 from forgotten)`,
    [address])
}

/** A reservation given back unchecked (the server was too busy to hash): nothing is counted. */
export async function releaseLoginAttempt (pool: Pool, address: string): Promise<void> {
  await pool.query(
    `with forgotten as (
       delete from login_attempts a where a.address = $1 and a.failures = 0 and ${LIVE_IN_FLIGHT} <= 1 returning 1
     )
     update login_attempts a
        set in_flight = greatest(${LIVE_IN_FLIGHT} - 1, 0), updated_at = now()
      where a.address = $1 and not exists (select 1 from forgotten)`,
    [address])
}

/** Forgets addresses with no attempt for `hours`: their backoff is long over, and the table stays small. */
export async function deleteStaleLoginAttempts (pool: Pool, hours = LOGIN_ATTEMPTS_FORGET_HOURS): Promise<number> {
  const { rowCount } = await pool.query(
    'delete from login_attempts where updated_at < now() - make_interval(hours => $1)', [hours])
  return rowCount ?? 0
}
