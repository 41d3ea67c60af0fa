// The admin's Webhooks page in a real browser (Debian's chromium via playwright-core), against
// real local receivers: an endpoint registered in the form gets its secret shown once and receives
// events signed with it; one whose receiver answers 500 for the whole (shortened) retry window is
// shown disabled with the last answer, and the operator fixes it from the page: replay, enable, delete.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { BrowserContext, Locator, Page } from 'playwright-core'
import { connectDevice, startTestHerald, type TestDevice, type TestHerald } from './helpers/herald.js'
import { ensureWebBuild, launchBrowser, loginAsAdmin, screenshot, type TestBrowser } from './helpers/browser.js'
import { answerOk, startWebhookReceiver, type WebhookReceiver } from './helpers/webhookReceiver.js'

let h: TestHerald
let b: TestBrowser
let ctx: BrowserContext
let page: Page
const problems: string[] = []
const receivers: WebhookReceiver[] = []
const devices: TestDevice[] = []

before(async () => {
  await ensureWebBuild()
  // a failing receiver is retried for 1.5 s, then its endpoint is disabled
  h = await startTestHerald({
    deps: {
      webhooks: { pollMs: 50, firstRetryDelayMs: 100, maxRetryDelayMs: 300, retryWindowMs: 1_500, timeoutMs: 1_000 }
    }
  })
  b = await launchBrowser(problems)
  ctx = await b.context()
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url })
  page = await ctx.newPage()
})

after(async () => {
  for (const d of devices) await d.close().catch(() => {})
  await b?.close()
  await h?.stop()
  for (const r of receivers) await r.close()
})

async function receiver (): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver()
  receivers.push(r)
  return r
}

async function device (user: string, clientId: string): Promise<void> {
  devices.push(await connectDevice(h.wsUrl, { clientId, password: await h.token(user) }))
}

const navLink = (): Locator => page.getByRole('navigation').getByRole('link', { name: 'Webhooks' })
const rowOf = (r: WebhookReceiver): Locator => page.getByTestId('webhook-row').filter({ hasText: r.url })

/** Fills the form and registers; the secret is read from the page, as the operator would copy it. */
async function register (r: WebhookReceiver, description: string, events: string[] | 'all'): Promise<string> {
  await page.locator('#w-url').fill(r.url)
  await page.locator('#w-description').fill(description)
  if (events === 'all') await page.getByLabel('Select all').check()
  else for (const type of events) await page.getByRole('checkbox', { name: type }).check()
  await page.getByRole('button', { name: 'Register endpoint' }).click()
  await page.getByTestId('new-webhook').filter({ hasText: r.url }).waitFor()
  r.secret = await page.getByTestId('webhook-secret').innerText()
  await rowOf(r).waitFor()
  return r.secret
}

test('register an endpoint: a bad URL is named beside its field; the secret is shown once and signs the events',
  async () => {
    const r = await receiver()
    await loginAsAdmin(page, h.url)
    await navLink().click()
    await page.waitForURL(/\/admin\/webhooks$/)
    await page.getByText('No endpoints').waitFor()

    // the form's own check passes an ftp URL; the server's 400 names the field
    await page.locator('#w-url').fill('ftp://example.com/hooks')
    await page.getByRole('checkbox', { name: 'device.online' }).check()
    await page.getByRole('button', { name: 'Register endpoint' }).click()
    const urlError = page.getByTestId('w-url-error')
    await urlError.waitFor()
    assert.match(await urlError.innerText(), /must be an absolute http or https URL/)
    assert.equal(await page.locator('#w-url').getAttribute('aria-invalid'), 'true')
    assert.equal(await page.getByRole('checkbox', { name: 'device.online' }).isChecked(), true, 'the form is kept')

    await page.getByRole('checkbox', { name: 'device.online' }).uncheck()
    const secret = await register(r, 'orders backend', ['device.online', 'device.offline'])
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    assert.equal(await urlError.count(), 0, 'the field error is gone')
    assert.match(await page.getByTestId('new-webhook').innerText(), /shown only this once/)
    await page.getByTestId('new-webhook').getByRole('button', { name: 'Copy' }).click()
    await page.getByTestId('new-webhook').getByRole('button', { name: 'Copied' }).waitFor()
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret)
    const row = await rowOf(r).innerText()
    assert.match(row, /orders backend/)
    assert.match(row, /enabled/)
    assert.match(row, /device\.online, device\.offline/)
    assert.match(row, /never/)

    // a device connects: the receiver verifies the event with the secret the page showed
    await device('wh-ui', 'wh-ui-phone')
    await r.until('device.online', events => events.some(e => e.type === 'device.online'))
    assert.ok(r.posts.length > 0 && r.posts.every(p => p.verified), 'signed with the secret shown')

    // the secret is not shown again, here or on the endpoint's page
    await rowOf(r).click()
    await page.getByTestId('webhook-url').filter({ hasText: r.url }).waitFor()
    await page.locator('[data-testid="delivery-row"][data-status="delivered"]').waitFor()
    assert.ok(!(await page.content()).includes(secret))
    await navLink().click()
    await rowOf(r).filter({ hasNotText: 'never' }).waitFor()
    assert.equal(await page.getByTestId('new-webhook').count(), 0)
    assert.ok(!(await page.content()).includes(secret))
    await screenshot(page, 'webhooks')
  })

test('an endpoint failing for the retry window is shown disabled with its last answer; replay, enable, delete',
  async () => {
    const r = await receiver()
    r.answer = (_req, res) => { res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver broken: db down') }
    await navLink().click()
    await register(r, 'failing receiver', 'all')
    assert.match(await rowOf(r).innerText(), /all 9 events/)
    await device('wh-ui', 'wh-ui-tablet')

    // retried, then disabled: the list says so without a reload
    await rowOf(r).filter({ hasText: 'disabled' }).waitFor({ timeout: 8_000 })
    assert.match(await rowOf(r).getByTestId('webhook-reason').innerText(), /last attempt: HTTP 500/)
    assert.match(await rowOf(r).innerText(), /disabled[\s\S]*\b1\b/, 'one failed delivery')

    await rowOf(r).click()
    await page.getByTestId('disabled-reason').waitFor()
    const failed = page.locator('[data-testid="delivery-row"][data-status="failed"]')
    await failed.waitFor()
    const failedId = (await failed.getAttribute('data-delivery'))!
    assert.match(await failed.getByTestId('last-status').innerText(), /HTTP 500/)
    assert.equal(await failed.getByTestId('last-response').innerText(), 'receiver broken: db down')
    assert.ok(r.posts.length >= 2, `retried: ${r.posts.length} POSTs`)
    assert.ok(r.posts.every(p => p.headers['webhook-id'] === failedId), 'every attempt was this batch')
    await screenshot(page, 'webhook')

    // the operator fixes the receiver and replays: the same batch arrives, with the same webhook-id
    r.answer = answerOk
    await failed.getByRole('button', { name: 'Replay' }).click()
    const [event] = await r.until('the replayed batch', events => events.length === 1)
    assert.equal(event.webhookId, failedId)
    assert.equal(event.type, 'device.online')
    assert.equal(event.data.deviceId, 'wh-ui-tablet')

    await page.getByRole('button', { name: 'Enable' }).click()
    await page.getByTestId('webhook-status').filter({ hasText: 'enabled' }).waitFor()
    await page.locator(`[data-testid="delivery-row"][data-delivery="${failedId}"][data-status="delivered"]`).waitFor()
    assert.equal(await page.getByTestId('disabled-reason').count(), 0)
    assert.equal(await page.getByRole('button', { name: 'Enable' }).count(), 0)

    // Delete asks first (the browser helper accepts), then the list no longer has it
    await page.getByRole('button', { name: 'Delete' }).click()
    await page.waitForURL(/\/admin\/webhooks$/)
    await page.getByTestId('webhook-row').first().waitFor()
    assert.equal(await rowOf(r).count(), 0)
    assert.equal(await page.getByTestId('webhook-row').count(), 1, 'the other endpoint stays')
    assert.deepEqual(problems.filter(p => p.startsWith('page error') || p.startsWith('dialog')), [])
  })
