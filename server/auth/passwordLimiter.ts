import { availableParallelism } from 'node:os'
import { isIPv6 } from 'node:net'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import {
  recordLoginFailure, recordLoginSuccess, releaseLoginAttempt, reserveLoginAttempt, type LoginAttemptLimits
} from '../store/loginAttempts.js'
import { sameText, verifyPassword } from './secrets.js'

export const ADMIN_USER = 'admin'

export interface PasswordPolicy extends LoginAttemptLimits {
  /** password hashes this process computes at once */
  maxConcurrentHashes: number
  /** checks that may wait for a hashing slot; past that they are refused at once */
  maxQueuedHashes: number
}

/**
 * One policy for every way in with the admin password (HTTP Basic and the login form), per client address.
 * A person who mistypes a few times never waits; a guesser's wait doubles with each wrong password.
 */
export const DEFAULT_PASSWORD_POLICY: Readonly<PasswordPolicy> = Object.freeze({
  freeFailures: 5,
  // then 1 s, 2 s, 4 s … : ten more guesses take ~17 minutes, after that one every 15 minutes
  firstBackoffSeconds: 1,
  maxBackoffSeconds: 15 * 60,
  // a person logs in from one tab; two lets a script and a browser overlap without a 429
  maxInFlight: 2,
  // a check takes well under a second, queue included; a reservation outliving this was lost
  leaseSeconds: 30,
  // each scrypt check is ~40-70 ms of one core on a libuv thread: leave one core for the event
  // loop (sends, MQTT) and at most 4, libuv's pool size, so file reads and DNS lookups keep a thread
  maxConcurrentHashes: Math.max(1, Math.min(4, availableParallelism() - 1)),
  // waiting longer than a few checks' time helps no one: refuse with a 1 s Retry-After instead
  maxQueuedHashes: 8
})

export type LimitReason = 'backoff' | 'in-flight' | 'busy'

export type PasswordVerdict =
  | { outcome: 'right' }
  | { outcome: 'wrong' }
  /** not checked: retry after this many whole seconds */
  | { outcome: 'limited', reason: LimitReason, retryAfterSeconds: number }

export interface PasswordLimiterDeps {
  pool: Pool
  log: Logger
  adminPasswordHash: string
  /** tests shorten or lengthen the backoff */
  policy?: Partial<PasswordPolicy>
  /** each password actually hashed, by result */
  onChecked?: (result: 'right' | 'wrong') => void
  onLimited?: (reason: LimitReason) => void
}

/**
 * The admin password check, limited. Before hashing, a check reserves a slot for its address in
 * Postgres (so parallel guesses count while in flight, and the limit holds across restarts and
 * processes), then waits for one of this process's hashing slots; after, it records the result.
 */
export class PasswordLimiter {
  readonly policy: Readonly<PasswordPolicy>
  private readonly hashing: Slots

  constructor (private readonly deps: PasswordLimiterDeps) {
    this.policy = Object.freeze({ ...DEFAULT_PASSWORD_POLICY, ...deps.policy })
    this.hashing = new Slots(this.policy.maxConcurrentHashes, this.policy.maxQueuedHashes)
  }

  async check (clientAddress: string, user: string, password: string): Promise<PasswordVerdict> {
    const { pool } = this.deps
    const address = limiterKey(clientAddress)
    const reservation = await reserveLoginAttempt(pool, address, this.policy)
    if (!reservation.allowed) {
      return reservation.waitSeconds > 0
        ? this.limited('backoff', reservation.waitSeconds)
        : this.limited('in-flight', 1)
    }
    if (!await this.hashing.enter()) {
      await releaseLoginAttempt(pool, address)
      return this.limited('busy', 1)
    }
    let right: boolean
    try {
      const passwordRight = await verifyPassword(password, this.deps.adminPasswordHash)
      right = sameText(user, ADMIN_USER) && passwordRight
    } catch (err) {
      await releaseLoginAttempt(pool, address)
      throw err
    } finally {
      this.hashing.leave()
    }
    this.deps.onChecked?.(right ? 'right' : 'wrong')
    if (right) {
      await recordLoginSuccess(pool, address)
      return { outcome: 'right' }
    }
    const { failures, waitSeconds } = await recordLoginFailure(pool, address, this.policy)
    this.deps.log.info({ address, failures, waitSeconds }, 'wrong admin user or password')
    return { outcome: 'wrong' }
  }

  private limited (reason: LimitReason, waitSeconds: number): PasswordVerdict {
    this.deps.onLimited?.(reason)
    return { outcome: 'limited', reason, retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)) }
  }
}

/**
 * What the limiter counts attempts by: the address itself, but an IPv6 address by its /64, the
 * network one subscriber gets and can fill with addresses at will. IPv4-mapped IPv6 is IPv4.
 */
export function limiterKey (address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]
  const bare = address.split('%')[0] // a zone id (fe80::1%eth0) names an interface, not a host
  if (!isIPv6(bare)) return address
  const [head, tail] = bare.split('::')
  // an embedded IPv4 tail (64:ff9b::1.2.3.4) is two groups
  const groupsOf = (part: string | undefined): string[] =>
    part ? part.split(':').flatMap(g => g.includes('.') ? ['0', '0'] : [g]) : []
  const left = groupsOf(head)
  const right = groupsOf(tail)
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0')
  const groups = [...left, ...zeros, ...right]
  return `${groups.slice(0, 4).map(g => parseInt(g, 16).toString(16)).join(':')}::/64`
}

/** At most `max` holders; up to `maxWaiting` more wait in line, in order; beyond that, no. */
class Slots {
  private held = 0
  private readonly waiting: Array<() => void> = []

  constructor (private readonly max: number, private readonly maxWaiting: number) {}

  /** resolves true once a slot is held; false at once when the line is full */
  async enter (): Promise<boolean> {
    if (this.held < this.max) {
      this.held++
      return true
    }
    if (this.waiting.length >= this.maxWaiting) return false
    await new Promise<void>(resolve => this.waiting.push(resolve))
    return true
  }

  leave (): void {
    const next = this.waiting.shift()
    // the slot passes straight to the next in line, so no newcomer can take it first
    if (next) next()
    else this.held--
  }
}
