// The admin password policy (server/auth/passwordLimiter.ts) called directly on a real Postgres,
// without HTTP: password-limiter.test.ts checks what a client sees through the two guards and
// waits out real backoffs; here each rule is checked on its own, and a backoff's end is reached
// by moving the address's blocked_until to now rather than by waiting for it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { createLogger } from '../server/log.js'
import { hashPassword, verifyPassword } from '../server/auth/secrets.js'
import { PasswordLimiter, type PasswordPolicy, type PasswordVerdict } from '../server/auth/passwordLimiter.js'
import { reserveLoginAttempt } from '../server/store/loginAttempts.js'

const PASSWORD = 'the-right-admin-password'
const log = createLogger('silent')
let db: TestDatabase
let hash: string
before(async () => {
  db = await createTestDatabase()
  hash = await hashPassword(PASSWORD)
})
after(async () => { await db.drop() })

// two free failures (each check hashes for real, tens of ms), then 100 s, 200 s, 400 s, capped at
// 500 s: long enough that no wait ends by itself during a test
const FREE = 2
const POLICY: Partial<PasswordPolicy> = {
  freeFailures: FREE, firstBackoffSeconds: 100, maxBackoffSeconds: 500, maxInFlight: 2
}

interface Counted { limiter: PasswordLimiter, checked: string[], refused: string[] }

function limiter (policy: Partial<PasswordPolicy> = {}): Counted {
  const checked: string[] = []
  const refused: string[] = []
  return {
    limiter: new PasswordLimiter({
      pool: db.pool,
      log,
      adminPasswordHash: hash,
      policy: { ...POLICY, ...policy },
      onChecked: result => checked.push(result),
      onLimited: reason => refused.push(reason)
    }),
    checked,
    refused
  }
}

const wrong = (l: Counted, address: string): Promise<PasswordVerdict> => l.limiter.check(address, 'admin', 'guess')
const right = (l: Counted, address: string): Promise<PasswordVerdict> => l.limiter.check(address, 'admin', PASSWORD)

/** The backoff of `address` is over: what waiting it out would do, without the wait. */
async function waitedOut (address: string): Promise<void> {
  await db.pool.query('update login_attempts set blocked_until = now() where address = $1', [address])
}

test('the free failures are checked at once; the next attempt, right password or not, waits', async () => {
  const l = limiter()
  for (let i = 0; i < FREE; i++) assert.deepEqual(await wrong(l, '192.0.2.1'), { outcome: 'wrong' })
  assert.deepEqual(await right(l, '192.0.2.1'), { outcome: 'limited', reason: 'backoff', retryAfterSeconds: 100 })
  assert.deepEqual(l.checked, ['wrong', 'wrong'], 'the limited attempt was not hashed')
  // another address is not affected
  assert.deepEqual(await right(l, '192.0.2.2'), { outcome: 'right' })
})

test('each wrong password past the free ones doubles the wait, up to the cap', async () => {
  const l = limiter()
  const address = '192.0.2.10'
  for (let i = 0; i < FREE; i++) await wrong(l, address)
  const waits: number[] = []
  for (let i = 0; i < 3; i++) {
    const refused = await wrong(l, address)
    assert.equal(refused.outcome, 'limited')
    waits.push((refused as { retryAfterSeconds: number }).retryAfterSeconds)
    await waitedOut(address)
    assert.deepEqual(await wrong(l, address), { outcome: 'wrong' }, 'checked once the wait is over')
  }
  const last = await wrong(l, address)
  waits.push((last as { retryAfterSeconds: number }).retryAfterSeconds)
  assert.deepEqual(waits, [100, 200, 400, 500], '800 is capped at 500')
})

test('the right password after a wait forgets every failure: a typo is free again', async () => {
  const l = limiter()
  const address = '192.0.2.20'
  for (let i = 0; i < FREE; i++) await wrong(l, address)
  await waitedOut(address)
  await wrong(l, address)
  await waitedOut(address)
  assert.deepEqual(await right(l, address), { outcome: 'right' })
  assert.equal((await db.pool.query('select 1 from login_attempts where address = $1', [address])).rowCount, 0)
  for (let i = 0; i < FREE; i++) assert.deepEqual(await wrong(l, address), { outcome: 'wrong' })
  assert.equal((await wrong(l, address)).outcome, 'limited')
})

test('a real wait ends the backoff by itself', async () => {
  const l = limiter({ firstBackoffSeconds: 0.2 })
  const address = '192.0.2.30'
  for (let i = 0; i < FREE; i++) await wrong(l, address)
  assert.equal((await right(l, address)).outcome, 'limited')
  // the one wait on a clock here: the rule is about time
  await new Promise(resolve => setTimeout(resolve, 250))
  assert.deepEqual(await right(l, address), { outcome: 'right' })
})

test('checks already running for the address (here, or in another process) are counted', async () => {
  // more free failures than checks in flight, so the in-flight limit is what refuses here
  const l = limiter({ freeFailures: 5 })
  // two checks in flight elsewhere: the reservations another process holds while it hashes
  for (let i = 0; i < 2; i++) await reserveLoginAttempt(db.pool, '192.0.2.40', { ...l.limiter.policy })
  assert.deepEqual(await right(l, '192.0.2.40'), { outcome: 'limited', reason: 'in-flight', retryAfterSeconds: 1 })
  assert.deepEqual(l.checked, [], 'refused before hashing')

  // at the last free failure, only one check may run: its result decides whether the next waits
  const address = '192.0.2.41'
  for (let i = 0; i < 4; i++) await wrong(l, address)
  await reserveLoginAttempt(db.pool, address, { ...l.limiter.policy })
  assert.deepEqual(await right(l, address), { outcome: 'limited', reason: 'in-flight', retryAfterSeconds: 1 })
})

test('parallel guesses get exactly the free failures hashed, never more, however they interleave', async () => {
  // three free failures and two checks at a time: without the one-at-a-time rule at the last free
  // failure, the second wave would get two checks where one is left
  const l = limiter({ freeFailures: 3 })
  const address = '192.0.2.50'
  const waves: number[] = []
  // every wave before the backoff gets at least one check, so this ends within freeFailures waves
  for (let wave = 0; wave < 3 && l.checked.length < 3; wave++) {
    const verdicts = await Promise.all(Array.from({ length: 30 }, () => wrong(l, address)))
    const checked = verdicts.filter(v => v.outcome === 'wrong').length
    assert.ok(checked >= 1, `wave ${wave}: something was checked`)
    waves.push(checked)
  }
  assert.equal(l.checked.length, 3, `checked per wave: ${waves.join(', ')}`)
  assert.equal((await wrong(l, address)).outcome, 'limited')
  const { rows } = await db.pool.query('select failures, in_flight from login_attempts where address = $1', [address])
  assert.deepEqual(rows, [{ failures: 3, in_flight: 0 }], 'every reservation was given back')
})

test('two limiters on one database (two servers) share one count and one backoff', async () => {
  const a = limiter()
  const b = limiter()
  const address = '192.0.2.60'
  await wrong(a, address)
  await wrong(b, address)
  assert.deepEqual(await right(b, address), { outcome: 'limited', reason: 'backoff', retryAfterSeconds: 100 })
  await waitedOut(address)
  assert.deepEqual(await right(b, address), { outcome: 'right' })
  assert.deepEqual(await wrong(a, address), { outcome: 'wrong' }, 'the success on one server reset it for the other')
})

test('an IPv6 client is counted by its /64: new addresses in it do not buy more guesses', async () => {
  const l = limiter()
  for (let i = 1; i <= FREE; i++) await wrong(l, `2001:db8:7:7::${i}`)
  assert.equal((await right(l, '2001:db8:7:7:ffff::1')).outcome, 'limited')
  assert.deepEqual(await right(l, '2001:db8:7:8::1'), { outcome: 'right' }, 'the next /64 is someone else')
})

test('a process hashes maxConcurrentHashes at once, maxQueuedHashes wait, the rest are refused uncounted', async () => {
  const l = limiter({ maxConcurrentHashes: 1, maxQueuedHashes: 1 })
  // different addresses, each within its own limit: only the process-wide line can refuse them
  const addresses = Array.from({ length: 10 }, (_, i) => `198.51.100.${i}`)
  const verdicts = await Promise.all(addresses.map(address => wrong(l, address)))
  const busy = verdicts.filter(v => v.outcome === 'limited')
  assert.ok(busy.length > 0, 'some were refused')
  for (const v of busy) assert.deepEqual(v, { outcome: 'limited', reason: 'busy', retryAfterSeconds: 1 })
  assert.equal(l.checked.length + busy.length, 10)
  const { rows } = await db.pool.query<{ address: string }>(
    'select address from login_attempts where address = any($1::text[]) order by address', [addresses])
  const hashed = addresses.filter((_, i) => verdicts[i].outcome === 'wrong').sort()
  assert.deepEqual(rows.map(r => r.address), hashed, 'a refused attempt gives its reservation back and leaves no row')
})

test('a password hash names a cost other than the default, and a check uses the cost it was made with', async () => {
  assert.match(hash, /^scrypt\$[^$]+\$[^$]+$/)
  const cheap = await hashPassword(PASSWORD, 1024)
  assert.match(cheap, /^scrypt:1024\$[^$]+\$[^$]+$/)
  assert.equal(await verifyPassword(PASSWORD, cheap), true)
  assert.equal(await verifyPassword('wrong', cheap), false)
  assert.equal(await verifyPassword(PASSWORD, hash), true)
  // the same salt and hash under another cost do not match
  assert.equal(await verifyPassword(PASSWORD, cheap.replace('scrypt:1024$', 'scrypt:2048$')), false)
  assert.equal(await verifyPassword(PASSWORD, cheap.replace('scrypt:1024$', 'bcrypt$')), false)
  assert.equal(await verifyPassword(PASSWORD, cheap.replace('scrypt:1024$', 'scrypt:x$')), false)
  assert.equal(await verifyPassword(PASSWORD, cheap.replace('scrypt:1024$', 'scrypt:1000$')), false)
})
