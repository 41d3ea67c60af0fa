// The admin UI in a real browser (Debian's chromium via playwright-core) against a real Herald,
// with real mqtt.js devices. Saves the README's screenshots to docs/screenshots/.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { BrowserContext, Page } from 'playwright-core'
import { startTestHerald, connectDevice, type TestHerald, type TestDevice } from './helpers/herald.js'
import { ensureWebBuild, launchBrowser, loginAsAdmin, screenshot, type TestBrowser } from './helpers/browser.js'
import { waitOffline } from './helpers/delivery.js'

let h: TestHerald
let b: TestBrowser
let ctx: BrowserContext
let page: Page
const problems: string[] = []
const devices: TestDevice[] = []

before(async () => {
  await ensureWebBuild()
  h = await startTestHerald()
  b = await launchBrowser(problems)
  ctx = await b.context()
  page = await ctx.newPage()
})

after(async () => {
  for (const d of devices) await d.close().catch(() => {})
  await b?.close()
  await h?.stop()
})

async function device (clientId: string, user: string, subscribe = true): Promise<TestDevice> {
  const d = await connectDevice(h.wsUrl, { clientId, password: await h.token(user) })
  if (subscribe) await d.client.subscribeAsync(`users/${user}/inbox`, { qos: 1 })
  devices.push(d)
  return d
}

const stepOf = (deviceId: string, step: string): string =>
  `[data-testid="timeline"][data-device="${deviceId}"] [data-step="${step}"]`

test('log in, see the overview; a wrong password is refused', async () => {
  await page.goto(`${h.url}/admin`)
  await page.locator('#password').fill('not-the-password')
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.getByRole('alert').filter({ hasText: 'wrong user or password' }).waitFor()
  assert.equal(await page.getByRole('button', { name: 'Log out' }).count(), 0)
  const refused = await page.request.get(`${h.url}/admin/api/overview`)
  assert.equal(refused.status(), 401, 'a refused login gives no session')

  await loginAsAdmin(page, h.url)
  await page.getByRole('heading', { name: 'Overview' }).waitFor()
  await page.getByTestId('stat-online').waitFor()
  await page.getByText('No traffic in the last hour').waitFor()
  const cookies = await ctx.cookies()
  const session = cookies.find(c => c.name === 'herald_admin')
  assert.ok(session, 'session cookie set')
  assert.equal(session.httpOnly, true)
  assert.equal(session.sameSite, 'Strict')
  assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read the session cookie')
})

test('a test push sent from the form is shown delivered, then opened, without reload', async () => {
  const phone = await device('carol-phone', 'carol')
  await page.goto(`${h.url}/admin/send`)
  await page.locator('#s-to').fill('carol')
  await page.locator('#s-title').fill('Your order has shipped')
  await page.locator('#s-body').fill('Parcel 7 is on its way.')
  await page.locator('#s-data').fill('{"orderId": 42, "items": ["tea", "cups"]}')
  await page.getByRole('button', { name: 'Send' }).click()
  await page.waitForURL(/\/admin\/messages\/[0-9a-f-]{36}$/)
  const id = page.url().split('/').pop()!
  // loaded once; everything after this arrives over the live channel
  const navigations: string[] = []
  page.on('framenavigated', f => { if (f === page.mainFrame()) navigations.push(f.url()) })

  const [received] = await phone.waitFor(1)
  assert.equal(received.payload.id, id)
  assert.equal(received.payload.title, 'Your order has shipped')
  await page.locator(stepOf('carol-phone', 'delivered')).waitFor()
  await page.getByTestId('sender').filter({ hasText: 'admin UI' }).waitFor()
  assert.match(await page.getByTestId('message-data').innerText(), /"orderId": 42/)

  await phone.client.publishAsync('users/carol/receipts', JSON.stringify({ id, event: 'opened' }), { qos: 1 })
  await page.locator(stepOf('carol-phone', 'opened')).waitFor()
  assert.deepEqual(navigations, [], 'the page was not reloaded')
  const steps = await page.locator('[data-testid="timeline"][data-device="carol-phone"] [data-step]')
    .evaluateAll(els => els.map(e => e.getAttribute('data-step')))
  assert.deepEqual(steps, ['queued', 'sent', 'delivered', 'opened'])
  await screenshot(page, 'detail')
})

test('a replaced delivery says why in its timeline and links to the message that replaced it', async () => {
  const away = await device('fay-phone', 'fay')
  await away.close()
  await waitOffline(h, 'fay', 'fay-phone')
  const older = await h.api('/v1/messages', { body: { to: { user: 'fay' }, title: 'Score 1-0', collapseKey: 'score' } })
  const newer = await h.api('/v1/messages', { body: { to: { user: 'fay' }, title: 'Score 2-0', collapseKey: 'score' } })
  await page.goto(`${h.url}/admin/messages/${older.body.id}`)
  await page.locator(stepOf('fay-phone', 'replaced')).waitFor()
  const reason = page.locator('[data-testid="timeline"][data-device="fay-phone"] [data-testid="reason"]')
  assert.match(await reason.innerText(), /a newer message with the same collapseKey took its place before it was written/)
  await reason.getByRole('link').click()
  await page.waitForURL(new RegExp(`/admin/messages/${newer.body.id}$`))
  await page.locator(stepOf('fay-phone', 'queued')).waitFor()
  assert.equal(
    await page.locator('[data-testid="timeline"][data-device="fay-phone"] [data-testid="reason"]').count(), 0,
    'a queued delivery has no reason')
})

test('the delivery log filters by user and status and pages forward and back', async () => {
  // dave: 5 messages acknowledged while online, then 30 that wait while he is away
  const dave = await device('dave-tablet', 'dave')
  for (let i = 1; i <= 5; i++) {
    await h.api('/v1/messages', { body: { to: { user: 'dave' }, title: `Earlier note ${i}` } })
  }
  await dave.waitFor(5)
  await dave.close()
  for (let i = 1; i <= 30; i++) {
    await h.api('/v1/messages', {
      body: { to: { user: 'dave' }, title: `Reminder ${i}`, priority: i % 7 === 0 ? 'high' : 'normal' }
    })
  }
  await device('erin-laptop', 'erin')
  for (let i = 1; i <= 3; i++) {
    await h.api('/v1/messages', { body: { to: { users: ['erin', 'dave', 'zoe'] }, title: `Team update ${i}` } })
  }

  await page.goto(`${h.url}/admin/log`)
  await page.getByTestId('log-row').first().waitFor()
  await page.locator('#f-user').fill('dave')
  await page.locator('#f-status').selectOption('queued')
  await page.getByRole('button', { name: 'Apply filters' }).click()
  await page.waitForURL(/user=dave&status=queued/)
  const rows = page.getByTestId('log-row')
  const titles = async (): Promise<string[]> => rows.getByTestId('log-title').allInnerTexts()
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 25 &&
    document.querySelector('[data-testid="log-row"] .cell-title')?.textContent?.startsWith('Team update 3'))
  const first = await titles()
  assert.equal(first[0], 'Team update 3')
  assert.equal(first[3], 'Reminder 30')
  assert.ok(first.every(t => !t.startsWith('Earlier note')), 'delivered messages are filtered out')
  await screenshot(page, 'log', { fullPage: false })

  await page.getByTestId('older').click()
  await page.waitForURL(/cursor=/)
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 8)
  const second = await titles()
  assert.deepEqual(second,
    ['Reminder 8', 'Reminder 7', 'Reminder 6', 'Reminder 5', 'Reminder 4', 'Reminder 3', 'Reminder 2', 'Reminder 1'])
  assert.equal(await page.getByTestId('older').isDisabled(), true, 'no page after the last')

  await page.getByTestId('newer').click()
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 25)
  assert.deepEqual(await titles(), first)
  assert.equal(await page.getByTestId('newer').isDisabled(), true)

  // status alone: the 5 earlier notes and carol's message are the delivered ones
  await page.goto(`${h.url}/admin/log?status=delivered`)
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length > 0)
  const delivered = await titles()
  assert.ok(delivered.includes('Earlier note 5') && delivered.includes('Your order has shipped') &&
    delivered.includes('Team update 1'))
  assert.ok(delivered.every(t => !t.startsWith('Reminder')))
})

test('a title with HTML in it is shown as text and no script runs', async () => {
  const evil = '<img src=x onerror="window.__xss=1;alert(1)">'
  const sent = await h.api('/v1/messages', {
    body: {
      to: { user: 'mallory' },
      title: evil,
      body: '<script>window.__xss=2</script>',
      data: { html: '<b onmouseover=alert(3)>x</b>' }
    }
  })
  assert.equal(sent.status, 202)
  const response = await page.goto(`${h.url}/admin/messages/${sent.body.id}`)
  const csp = response!.headers()['content-security-policy']
  assert.match(csp, /script-src 'self'(;|$)/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
  await page.getByTestId('message-title').waitFor()
  assert.equal(await page.getByTestId('message-title').innerText(), evil)
  await page.getByText('<script>window.__xss=2</script>').waitFor()
  await page.goto(`${h.url}/admin/log?messageId=${sent.body.id}`)
  await page.getByTestId('log-title').filter({ hasText: evil }).waitFor()
  assert.equal(await page.locator('img[src="x"]').count(), 0)
  assert.equal(await page.evaluate(() => (window as any).__xss), undefined)
  // and the policy itself refuses inline script, were any to get in
  await page.evaluate(() => {
    const s = document.createElement('script')
    s.textContent = 'window.__inline = 1'
    document.body.appendChild(s)
  })
  assert.equal(await page.evaluate(() => (window as any).__inline), undefined)
  assert.deepEqual(problems.filter(p => p.startsWith('dialog')), [])
  assert.ok(problems.some(p => /Content Security Policy/i.test(p)), 'the injected inline script was refused by the CSP')
})

test('an admin JSON route without a session gets 401', async () => {
  const routes: Array<[string, string]> = [
    ['GET', '/admin/api/overview'], ['GET', '/admin/api/log'], ['GET', '/admin/api/events'],
    ['GET', `/admin/api/messages/${crypto.randomUUID()}`], ['POST', '/admin/api/messages'],
    ['GET', '/admin/api/api-keys'], ['GET', '/admin/api/users?prefix=a'], ['GET', '/admin/api/users/carol/devices'],
    ['DELETE', '/admin/api/devices/carol-phone'], ['POST', '/admin/api/tokens'], ['GET', '/admin/api/session'],
    ['GET', '/admin/api/no-such-route']
  ]
  for (const [method, path] of routes) {
    const res = await fetch(h.url + path, { method, headers: { cookie: 'herald_admin=forged-session-id' } })
    assert.equal(res.status, 401, `${method} ${path}`)
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/)
    assert.equal((await res.json()).code, 'unauthorized')
  }
  // a browser without the session: the same
  const other = await b.context()
  const anon = await other.newPage()
  const res = await anon.request.get(`${h.url}/admin/api/log`)
  assert.equal(res.status(), 401)
  await anon.goto(`${h.url}/admin/log`)
  await anon.getByRole('button', { name: 'Log in' }).waitFor()
  assert.equal(await anon.getByTestId('log-row').count(), 0)
})

test('users and devices: find a user, end a device session', async () => {
  const online = await device('frank-phone', 'frank')
  const away = await device('frank-laptop', 'frank')
  await away.close()
  await h.api('/v1/messages', { body: { to: { user: 'frank' }, title: 'Waiting for the laptop' } })
  await online.waitFor(1)

  await page.goto(`${h.url}/admin/users`)
  await page.locator('#u-search').fill('fra')
  await page.getByRole('link', { name: /frank/ }).first().click()
  await page.waitForURL(/\/admin\/users\/frank$/)
  await page.getByTestId('device-row').nth(1).waitFor()
  const phoneRow = page.getByTestId('device-row').filter({ hasText: 'frank-phone' })
  const laptopRow = page.getByTestId('device-row').filter({ hasText: 'frank-laptop' })
  await phoneRow.getByText('online').waitFor()
  await laptopRow.getByText('offline').waitFor()
  assert.equal(await laptopRow.locator('.b-queued').innerText(), '1')
  await screenshot(page, 'devices')

  const closed = new Promise<void>(resolve => online.client.once('close', () => resolve()))
  await phoneRow.getByRole('button', { name: 'End session' }).click()
  await closed
  await phoneRow.getByText('offline').waitFor()
})

test('API keys: create (secret shown once), list, revoke', async () => {
  await page.goto(`${h.url}/admin/keys`)
  await page.getByTestId('key-row').first().waitFor()
  await page.locator('#k-name').fill('orders service')
  await page.getByRole('button', { name: 'Create key' }).click()
  const shown = page.getByTestId('new-key')
  await shown.waitFor()
  const key = await shown.locator('code').innerText()
  assert.match(key, /^hk_/)
  const row = page.getByTestId('key-row').filter({ hasText: 'orders service' })
  await row.waitFor()
  assert.equal(await row.locator('.mono').innerText(), `${key.slice(0, 10)}…`)
  const works = await fetch(`${h.url}/v1/messages?limit=1`, { headers: { authorization: `Bearer ${key}` } })
  assert.equal(works.status, 200)
  await screenshot(page, 'keys')

  await page.reload()
  await row.waitFor()
  assert.equal(await page.getByTestId('new-key').count(), 0, 'the secret is shown only once')
  assert.equal(await page.getByText(key).count(), 0)
  await row.getByRole('button', { name: 'Revoke' }).click()
  await row.getByText('revoked').waitFor()
  // the server caches keys for up to 5 s; the admin revoke clears that cache at once
  const refused = await fetch(`${h.url}/v1/messages?limit=1`, { headers: { authorization: `Bearer ${key}` } })
  assert.equal(refused.status, 401)
})

test('the overview shows the traffic live (and reads on a phone)', async () => {
  await page.goto(`${h.url}/admin`)
  await page.waitForFunction(() =>
    Number(document.querySelector('[data-testid="stat-accepted"] .sub')?.textContent?.split(' ')[0]) >= 40)
  await page.locator('.chart canvas').first().waitFor()
  const before = await page.getByTestId('stat-accepted').locator('.sub').innerText()
  const erin = devices.find(d => d.client.options.clientId === 'erin-laptop')!
  for (let i = 0; i < 5; i++) await h.api('/v1/messages', { body: { to: { user: 'erin' }, title: `Live ${i}` } })
  await erin.waitFor(8)
  // no reload: the live channel brings the new figures within a few seconds
  await page.waitForFunction(b => document.querySelector('[data-testid="stat-accepted"] .sub')?.textContent !== b,
    before, { timeout: 10_000 })
  await screenshot(page, 'overview')

  const phone = await (await b.context({ phone: true })).newPage()
  await loginAsAdmin(phone, h.url)
  await phone.goto(`${h.url}/admin/log`)
  await phone.getByTestId('log-row').first().waitFor()
  const overflow = await phone.evaluate(() =>
    document.documentElement.scrollWidth - document.documentElement.clientWidth)
  assert.ok(overflow <= 1, `no sideways scrolling on a phone (${overflow}px)`)
  await screenshot(phone, 'log-phone', { fullPage: false })
})

test('logout ends the session', async () => {
  await page.goto(`${h.url}/admin`)
  await page.getByRole('button', { name: 'Log out' }).click()
  await page.getByRole('button', { name: 'Log in' }).waitFor()
  const res = await page.request.get(`${h.url}/admin/api/overview`)
  assert.equal(res.status(), 401)
  assert.deepEqual(problems.filter(p => p.startsWith('page error') || p.startsWith('dialog')), [])
})
