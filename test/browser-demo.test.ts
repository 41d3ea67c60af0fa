// The browser demo device (/demo) in a real browser: it connects over MQTT on WebSocket,
// receives a push sent over REST, and its receipts reach the admin's message page.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { BrowserContext } from 'playwright-core'
import { startTestHerald, type TestHerald } from './helpers/herald.js'
import { ensureWebBuild, launchBrowser, loginAsAdmin, screenshot, type TestBrowser } from './helpers/browser.js'

let h: TestHerald
let b: TestBrowser
let ctx: BrowserContext
const problems: string[] = []

before(async () => {
  await ensureWebBuild()
  h = await startTestHerald()
  b = await launchBrowser(problems)
  ctx = await b.context()
  await ctx.grantPermissions(['notifications'], { origin: h.url })
})

after(async () => {
  await b?.close()
  await h?.stop()
})

const stepOf = (deviceId: string, step: string): string =>
  `[data-testid="timeline"][data-device="${deviceId}"] [data-step="${step}"]`

test('the demo page refuses to hand out a token without the admin session', async () => {
  const anon = await (await b.context()).newPage()
  const res = await anon.goto(`${h.url}/demo`)
  assert.match(res!.headers()['content-security-policy'], /script-src 'self'/)
  await anon.locator('#d-user').fill('nina')
  await anon.getByRole('button', { name: 'Get a token (admin)' }).click()
  await anon.getByRole('alert').filter({ hasText: 'needs the admin session' }).waitFor()
  assert.equal(await anon.locator('#d-token').inputValue(), '')
})

test('the demo device receives a push sent over REST, its receipts reach the admin page, ' +
  'and it catches up after a reconnect', async () => {
  const admin = await ctx.newPage()
  await loginAsAdmin(admin, h.url)

  const demo = await ctx.newPage()
  await demo.goto(`${h.url}/demo`)
  await demo.locator('#d-user').fill('nina')
  await demo.getByRole('button', { name: 'Get a token (admin)' }).click()
  await demo.waitForFunction(() =>
    (document.querySelector('#d-token') as HTMLTextAreaElement).value.split('.').length === 3)
  await demo.getByRole('button', { name: 'Connect' }).click()
  await demo.getByTestId('status').filter({ hasText: 'connected' }).waitFor()
  // the SDK keeps one device id per user in localStorage, and the page shows it
  const clientId = await demo.evaluate(() => localStorage.getItem('herald:device:nina'))
  assert.match(clientId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.equal(await demo.getByTestId('device-id').innerText(), clientId)

  const sent = await h.api('/v1/messages', {
    body: {
      to: { user: 'nina' }, title: 'Welcome, Nina', body: 'Your first push, in a browser.', data: { screen: 'inbox' }
    }
  })
  assert.equal(sent.status, 202)
  assert.equal(sent.body.recipients, 1, 'the demo device holds a persistent session for nina')
  const item = demo.locator(`[data-testid="push"][data-id="${sent.body.id}"]`)
  await item.waitFor()
  assert.match(await item.innerText(), /Welcome, Nina[\s\S]*Your first push, in a browser\.[\s\S]*"screen": "inbox"/)
  await item.locator('.b-displayed').waitFor()

  await admin.goto(`${h.url}/admin/messages/${sent.body.id}`)
  await admin.locator(stepOf(clientId!, 'displayed')).waitFor()
  // a click on the push is the user opening it; the admin page, already open, shows it live
  await item.click()
  await item.locator('.b-opened').waitFor()
  await admin.locator(stepOf(clientId!, 'opened')).waitFor()
  const steps = await admin.locator(`[data-testid="timeline"][data-device="${clientId}"] [data-step]`)
    .evaluateAll(els => els.map(e => e.getAttribute('data-step')))
  assert.deepEqual(steps, ['queued', 'sent', 'delivered', 'displayed', 'opened'])

  // reconnect with the same persistent session: what was sent meanwhile arrives, nothing twice
  await demo.getByRole('button', { name: 'Disconnect' }).click()
  await demo.getByTestId('status').filter({ hasText: 'not connected' }).waitFor()
  const second = await h.api('/v1/messages', { body: { to: { user: 'nina' }, title: 'While you were away' } })
  assert.equal(second.body.recipients, 1, 'queued for the offline persistent session')
  await demo.getByRole('button', { name: 'Connect' }).click()
  await demo.locator(`[data-testid="push"][data-id="${second.body.id}"]`).waitFor()
  assert.equal(await demo.getByTestId('push').count(), 2)
  await screenshot(demo, 'demo')
  assert.deepEqual(problems.filter(p => p.startsWith('page error') || p.startsWith('dialog') || /Content Security Policy/i.test(p)), [])
})
