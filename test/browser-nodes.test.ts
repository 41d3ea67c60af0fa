// The admin's Nodes page in a real browser (Debian's chromium via playwright-core), with two
// Herald processes on one database: both are shown, the one that served the page is marked, one
// is the leader, and a process that stops turns gone without a reload.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Page } from 'playwright-core'
import { HERALD_VERSION } from '../server/version.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { startTestHerald, type TestHerald } from './helpers/herald.js'
import { ensureWebBuild, launchBrowser, loginAsAdmin, screenshot, type TestBrowser } from './helpers/browser.js'

let db: TestDatabase
let a: TestHerald
let other: TestHerald
let b: TestBrowser
let page: Page
const problems: string[] = []

before(async () => {
  await ensureWebBuild()
  db = await createTestDatabase()
  a = await startTestHerald({ db })
  other = await startTestHerald({ db })
  b = await launchBrowser(problems)
  page = await (await b.context()).newPage()
})

after(async () => {
  await b?.close()
  await a?.stop()
  await other?.stop()
  await db?.drop()
})

const row = (nodeId: string): string => `[data-testid="node-row"][data-node="${nodeId}"]`

test('the Nodes page shows both processes, marks the one serving it and one leader', async () => {
  await loginAsAdmin(page, a.url)
  await page.getByTestId('nodes-running').filter({ hasText: '2 nodes' }).waitFor()
  await page.getByRole('link', { name: 'Nodes', exact: true }).click()
  await page.waitForURL(/\/admin\/nodes$/)
  await page.getByRole('heading', { name: 'Nodes' }).waitFor()
  await page.locator(row(a.herald.nodeId)).waitFor()
  await page.locator(row(other.herald.nodeId)).waitFor()
  assert.equal(await page.getByTestId('node-row').count(), 2)

  assert.equal(await page.locator(`${row(a.herald.nodeId)} [data-testid="served-by"]`).count(), 1)
  assert.equal(await page.getByTestId('served-by').count(), 1, 'only the node that served the page is marked')
  for (const id of [a.herald.nodeId, other.herald.nodeId]) {
    const text = await page.locator(row(id)).innerText()
    assert.match(text, /running/)
    assert.ok(text.includes(HERALD_VERSION), text)
    assert.ok(text.includes(`:${process.pid}`), text)
  }
  // the first to start leads at once; the other never does while it runs
  await page.locator('[data-testid="node-row"] .badge', { hasText: 'leader' }).first().waitFor()
  assert.equal(await page.locator('[data-testid="node-row"] .badge', { hasText: 'leader' }).count(), 1)
  await screenshot(page, 'nodes')
})

test('a process that stops is shown gone, without a reload', async () => {
  const navigations: string[] = []
  page.on('framenavigated', f => { if (f === page.mainFrame()) navigations.push(f.url()) })
  await other.stop()
  await page.locator(row(other.herald.nodeId), { hasText: 'gone' }).waitFor({ timeout: 10_000 })
  // still the leader, or the leader now (the survivor takes the chores within 2 s)
  await page.locator(row(a.herald.nodeId), { hasText: 'leader' }).waitFor({ timeout: 10_000 })
  assert.doesNotMatch(await page.locator(row(other.herald.nodeId)).innerText(), /leader/)
  assert.deepEqual(navigations, [], 'the page was not reloaded')
  assert.deepEqual(problems.filter(p => p.startsWith('page error') || p.startsWith('dialog')), [])
})
