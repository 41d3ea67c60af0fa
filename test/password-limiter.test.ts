// Admin password guessing: one limiter and one policy for HTTP Basic (/v1/api-keys) and the login
// form, in Postgres (across restarts and processes), counting checks in flight, with a backoff that
// doubles; TRUST_PROXY picks the client address; wrong API keys are counted, never limited.
import { metricSample } from './helpers/metrics.js'
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { startTestHerald, ADMIN_PASSWORD, type TestHerald } from './helpers/herald.js'
import { PASSWORD_HASH_COST } from '../server/auth/secrets.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { sleep } from './helpers/probe.js'
import { ensureWebBuild, launchBrowser } from './helpers/browser.js'
import { DEFAULT_PASSWORD_POLICY, limiterKey, type PasswordPolicy } from '../server/auth/passwordLimiter.js'
import { deleteStaleLoginAttempts, reserveLoginAttempt } from '../server/store/loginAttempts.js'

const METRICS_TOKEN = 'metrics-token-for-password-tests'
const FREE = DEFAULT_PASSWORD_POLICY.freeFailures
const IN_FLIGHT = DEFAULT_PASSWORD_POLICY.maxInFlight
// a backoff no test outlasts, where a test must not depend on how fast a burst is answered
const LONG_BACKOFF: Partial<PasswordPolicy> = { firstBackoffSeconds: 600 }

const cleanup: Array<() => Promise<void>> = []
// each test's servers and databases go when it ends: kept to the end of the file, they held ~50
// of the test Postgres' 100 connections while other files needed theirs
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

async function herald (opts: Parameters<typeof startTestHerald>[0] = {}): Promise<TestHerald> {
  // the real hash cost: how many checks run at once depends on how long each takes
  const h = await startTestHerald({
    ...opts, env: { METRICS_TOKEN, ...opts.env }, deps: { passwordHashCost: PASSWORD_HASH_COST, ...opts.deps }
  })
  cleanup.push(() => h.stop())
  return h
}

async function database (): Promise<TestDatabase> {
  const db = await createTestDatabase()
  cleanup.push(() => db.drop())
  return db
}

type Guard = 'basic' | 'form'
interface Answer { status: number, retryAfter: number | undefined, body: any }

/** One admin login attempt through HTTP Basic on /v1/api-keys or through the login form. */
async function attempt (
  h: TestHerald, guard: Guard, password: string, headers: Record<string, string> = {}
): Promise<Answer> {
  const basic = 'Basic ' + Buffer.from(`admin:${password}`).toString('base64')
  const res = guard === 'basic'
    ? await fetch(`${h.url}/v1/api-keys`, { headers: { authorization: basic, ...headers } })
    : await fetch(`${h.url}/admin/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ password })
    })
  const retryAfter = res.headers.get('retry-after')
  const body = await res.json()
  return { status: res.status, retryAfter: retryAfter === null ? undefined : Number(retryAfter), body }
}

async function metric (h: TestHerald, name: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text()
  return metricSample(text, name) ?? 0
}

const wrongChecks = (h: TestHerald): Promise<number> => metric(h, 'herald_password_checks_total{result="wrong"}')
const wrong = (i: number | string): string => `wrong-password-${i}`

function assertLimited (a: Answer, detail: RegExp): void {
  assert.equal(a.status, 429, JSON.stringify(a.body))
  assert.equal(a.body.code, 'too-many-requests')
  assert.ok(a.retryAfter !== undefined && a.retryAfter >= 1, `Retry-After ${a.retryAfter}`)
  assert.match(a.body.detail, detail)
}

for (const guard of ['basic', 'form'] as const) {
  test(`${guard}: 100 wrong passwords in parallel get at most ${FREE} checks; the rest 429 at once`, async () => {
    const h = await herald({ deps: { passwordPolicy: LONG_BACKOFF } })
    // checks in flight count against the free failures, so however guesses are sent, no more than
    // the free ones are ever hashed before the backoff (at most 2 at a time, 1 at the last one)
    const wave = async (): Promise<number> => {
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => attempt(h, guard, wrong(i))))
      const refused = answers.filter(a => a.status === 429)
      const unexpected = answers.map(a => a.status).filter(status => status !== 401 && status !== 429)
      assert.deepEqual(unexpected, [], 'only 401 and 429')
      for (const a of refused) assertLimited(a, /try again in/)
      return 100 - refused.length
    }
    const firstWave = await wave()
    assert.ok(firstWave >= 1 && firstWave <= FREE, `${firstWave} of 100 parallel guesses checked`)
    assert.equal(await wrongChecks(h), firstWave, 'each 401 is one password hashed, and only those were hashed')
    // more waves until one gets nothing checked: by then exactly the free failures were
    let total = firstWave
    let checked = firstWave
    // each wave before the backoff gets at least one check, so this ends within FREE waves
    for (let waves = 1; checked > 0 && waves <= FREE; waves++) {
      checked = await wave()
      total += checked
    }
    assert.equal(total, FREE)
    assert.equal(await wrongChecks(h), FREE)

    // the right password now waits too, and is told how long
    const locked = await attempt(h, guard, ADMIN_PASSWORD)
    assertLimited(locked, /wrong admin passwords from this address; try again in 10 minutes/)
    assert.equal(await metric(h, 'herald_password_checks_total{result="right"}'), 0)
  })
}

test('one policy for both guards: the backoff doubles, the right password waits it out, then resets it', async () => {
  const h = await herald({ deps: { passwordPolicy: { firstBackoffSeconds: 1 } } })
  // the free failures, shared between HTTP Basic and the form
  for (let i = 0; i < FREE; i++) assert.equal((await attempt(h, i % 2 === 0 ? 'basic' : 'form', wrong(i))).status, 401)
  const first = await attempt(h, 'form', ADMIN_PASSWORD)
  assertLimited(first, /try again in 1 second \(each further wrong one doubles the wait, up to 15 minutes; the right/)
  assert.equal(first.retryAfter, 1)
  assertLimited(await attempt(h, 'basic', ADMIN_PASSWORD), /try again in 1 second/)

  await sleep(first.retryAfter * 1000)
  assert.equal((await attempt(h, 'basic', wrong('after-wait'))).status, 401, 'checked once the wait is over')
  const second = await attempt(h, 'basic', ADMIN_PASSWORD)
  assertLimited(second, /try again in 2 seconds/)
  assert.equal(second.retryAfter, 2, 'the next wrong password doubled the wait')

  await sleep(second.retryAfter * 1000)
  assert.equal((await attempt(h, 'form', ADMIN_PASSWORD)).status, 200)
  // the success forgot the failures: a typo is free again
  assert.equal((await attempt(h, 'basic', wrong('typo'))).status, 401)
  assert.equal((await attempt(h, 'basic', ADMIN_PASSWORD)).status, 200)
  assert.equal((await h.db.pool.query('select * from login_attempts')).rowCount, 0, 'a success leaves no row behind')
})

test('the login form shows a locked-out admin how long to wait', async () => {
  await ensureWebBuild()
  const h = await herald({ deps: { passwordPolicy: LONG_BACKOFF } })
  for (let i = 0; i < FREE; i++) assert.equal((await attempt(h, 'form', wrong(i))).status, 401)
  const browser = await launchBrowser()
  cleanup.push(() => browser.close())
  const page = await (await browser.context()).newPage()
  await page.goto(`${h.url}/admin`)
  await page.locator('#password').fill(ADMIN_PASSWORD)
  await page.getByRole('button', { name: 'Log in' }).click()
  const told = 'too many wrong admin passwords from this address; try again in 10 minutes'
  await page.getByRole('alert').filter({ hasText: told }).waitFor()
  assert.equal(await page.getByRole('button', { name: 'Log out' }).count(), 0)
})

test('the limit holds across a restart and across two servers on one database', async () => {
  const db = await database()
  const first = await herald({ db, deps: { passwordPolicy: LONG_BACKOFF } })
  for (let i = 0; i < FREE; i++) assert.equal((await attempt(first, 'form', wrong(i))).status, 401)
  await first.stop()

  const restarted = await herald({ db, deps: { passwordPolicy: LONG_BACKOFF } })
  const locked = await attempt(restarted, 'basic', ADMIN_PASSWORD)
  assertLimited(locked, /try again in 10 minutes/)
  assert.ok(locked.retryAfter! > 590, `Retry-After ${locked.retryAfter}`)

  // a second server on the same database: a fresh address's parallel guesses, half to each
  // server, share one count (the reservation is one atomic upsert, whichever process makes it)
  await db.pool.query('delete from login_attempts')
  const other = await herald({ db, deps: { passwordPolicy: LONG_BACKOFF } })
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) =>
    attempt(i % 2 === 0 ? restarted : other, i % 4 < 2 ? 'basic' : 'form', wrong(i))))
  const checked = answers.filter(a => a.status === 401).length
  assert.equal(checked + answers.filter(a => a.status === 429).length, 100)
  assert.equal(checked, await wrongChecks(restarted) + await wrongChecks(other))
  assert.ok(checked >= 1 && checked <= FREE, `${checked} passwords checked by the two servers together`)
  // a loaded machine may answer more of the burst 429 (a check in flight) than it checks: the free
  // failures left are used up one at a time, alternating servers, and then the limit binds on both
  for (let i = checked; i < FREE; i++) {
    assert.equal((await attempt(i % 2 === 0 ? other : restarted, 'form', wrong(`one-by-one-${i}`))).status, 401)
  }
  assertLimited(await attempt(other, 'form', ADMIN_PASSWORD), /try again in/)
  assertLimited(await attempt(restarted, 'basic', ADMIN_PASSWORD), /try again in/)
})

test('TRUST_PROXY on: forwarded clients are limited apart, by the rightmost untrusted hop', async () => {
  const h = await herald({ env: { TRUST_PROXY: 'loopback' }, deps: { passwordPolicy: LONG_BACKOFF } })
  const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address })
  for (let i = 0; i < FREE; i++) {
    // the leftmost entry is the client's to write: a new one each time changes nothing
    assert.equal((await attempt(h, 'form', wrong(i), from(`198.51.100.${i}, 203.0.113.1`))).status, 401)
  }
  assertLimited(await attempt(h, 'form', ADMIN_PASSWORD, from('203.0.113.1')), /try again in/)
  assertLimited(await attempt(h, 'basic', ADMIN_PASSWORD, from('203.0.113.1')), /try again in/)
  // the admin behind the same proxy is not locked out
  assert.equal((await attempt(h, 'form', ADMIN_PASSWORD, from('203.0.113.2'))).status, 200)
  assert.equal((await attempt(h, 'basic', ADMIN_PASSWORD, from('203.0.113.2'))).status, 200)
  const { rows } = await h.db.pool.query('select address from login_attempts')
  assert.deepEqual(rows, [{ address: '203.0.113.1' }])
})

test('TRUST_PROXY off (the default): X-Forwarded-For is ignored', async () => {
  const h = await herald({ deps: { passwordPolicy: LONG_BACKOFF } })
  for (let i = 0; i < FREE; i++) {
    assert.equal((await attempt(h, 'basic', wrong(i), { 'x-forwarded-for': `203.0.113.${i}` })).status, 401)
  }
  assertLimited(await attempt(h, 'basic', ADMIN_PASSWORD, { 'x-forwarded-for': '203.0.113.200' }), /try again in/)
  const { rows } = await h.db.pool.query('select address from login_attempts')
  assert.deepEqual(rows, [{ address: '127.0.0.1' }])
})

test('hashing is capped for the whole process: past the line, 429 at once, counted against no address', async () => {
  const policy = { maxConcurrentHashes: 1, maxQueuedHashes: 2 }
  const h = await herald({ env: { TRUST_PROXY: 'loopback' }, deps: { passwordPolicy: policy } })
  // 30 different clients at once: per address each is within its limit; together they are not
  const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    attempt(h, 'form', wrong(i), { 'x-forwarded-for': `203.0.113.${i}` })))
  const busy = answers.filter(a => a.status === 429)
  const checked = answers.filter(a => a.status === 401).length
  assert.equal(checked + busy.length, 30)
  assert.ok(busy.length > 0, 'some were refused')
  for (const a of busy) {
    assertLimited(a, /this server is busy checking other admin passwords; try again in 1 second/)
    assert.equal(a.retryAfter, 1)
  }
  assert.equal(await wrongChecks(h), checked)
  assert.equal(await metric(h, 'herald_password_checks_refused_total{reason="busy"}'), busy.length)
  const { rows } = await h.db.pool.query<{ failures: number, in_flight: number }>(
    'select failures, in_flight from login_attempts')
  assert.equal(rows.length, checked, 'a refused attempt gives its reservation back and leaves no row')
  assert.ok(rows.every(r => r.failures === 1 && r.in_flight === 0))
})

// 200: forty times the free password failures, so a limit on wrong keys would show
test('200 wrong API keys all get 401, never 429, and are counted; the right key still works', async () => {
  const h = await herald()
  const statuses = new Map<number, number>()
  for (let batch = 0; batch < 4; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      h.api('/v1/users/u/devices', { apiKey: `hk_wrong_${batch}_${i}_`.padEnd(46, 'x') })))
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
  }
  assert.deepEqual([...statuses], [[401, 200]])
  assert.equal(await metric(h, 'herald_api_key_failures_total{reason="unknown"}'), 200)
  assert.equal((await h.api('/v1/users/u/devices', { apiKey: '' })).status, 401)
  assert.equal(await metric(h, 'herald_api_key_failures_total{reason="missing"}'), 1)
  assert.equal((await h.api('/v1/users/u/devices')).status, 200)
  assert.equal(await metric(h, 'herald_password_checks_total{result="wrong"}'), 0)
})

test('store: a dead process\'s reservation stops counting when its lease ends; quiet addresses are swept', async () => {
  const db = await database()
  const limits = { ...DEFAULT_PASSWORD_POLICY }
  for (let i = 0; i < IN_FLIGHT; i++) {
    assert.deepEqual(await reserveLoginAttempt(db.pool, 'gone', limits), { allowed: true, waitSeconds: 0 })
  }
  const third = await reserveLoginAttempt(db.pool, 'gone', limits)
  assert.deepEqual(third, { allowed: false, waitSeconds: 0 }, 'both slots are in flight')
  // the process that reserved them died: no result is ever recorded, and the lease runs out
  await db.pool.query("update login_attempts set lease_until = now() - interval '1 second' where address = 'gone'")
  assert.equal((await reserveLoginAttempt(db.pool, 'gone', limits)).allowed, true)

  await reserveLoginAttempt(db.pool, 'recent', limits)
  await db.pool.query("update login_attempts set updated_at = now() - interval '25 hours' where address = 'gone'")
  assert.equal(await deleteStaleLoginAttempts(db.pool), 1)
  assert.deepEqual((await db.pool.query('select address from login_attempts')).rows, [{ address: 'recent' }])
})

test('limiterKey: an IPv6 client is counted by its /64; IPv4-mapped IPv6 is IPv4', () => {
  assert.equal(limiterKey('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  assert.equal(limiterKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64')
  assert.equal(limiterKey('2001:db8::5'), '2001:db8:0:0::/64')
  assert.equal(limiterKey('::1'), '0:0:0:0::/64')
  assert.equal(limiterKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.equal(limiterKey('::ffff:10.0.0.1'), '10.0.0.1')
  assert.equal(limiterKey('10.0.0.1'), '10.0.0.1')
})
