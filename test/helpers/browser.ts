// Real-browser tests: Debian's chromium driven by playwright-core, against the built front end.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { ADMIN_PASSWORD } from './herald.js'
import { PROJECT_ROOT } from './root.js'

// vite builds the project's own web/, and screenshots go there
const root = PROJECT_ROOT
// the demo page is built with the device SDK's sources
const WEB_SRC = [path.join(root, 'web'), path.join(root, 'sdk/js/src'), path.join(root, 'vite.config.ts')]
const MANIFEST = path.join(root, 'dist/web/.vite/manifest.json')
const LOCK = path.join(root, 'dist/.web-build.lock')
// a build takes a few seconds; a lock older than this was left by a killed run
const STALE_LOCK_MS = 120_000
// The README's pictures are refreshed with UPDATE_SCREENSHOTS=1 npm test -- browser; otherwise the
// tests still take them (a page that fails to render fails the test) but into test-results/.
export const SCREENSHOTS = path.join(
  root, process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/screenshots' : 'test-results/screenshots')

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync'
]

function newestMtime (p: string): number {
  const s = statSync(p)
  if (!s.isDirectory()) return s.mtimeMs
  return readdirSync(p).reduce((max, name) => Math.max(max, newestMtime(path.join(p, name))), s.mtimeMs)
}

const isFresh = (): boolean =>
  existsSync(MANIFEST) && statSync(MANIFEST).mtimeMs >= Math.max(...WEB_SRC.map(newestMtime))

/**
 * Builds the front end (vite build → dist/web) when it is missing or older than a file under
 * web/. Test files run in parallel, so one build runs at a time under a lock directory.
 */
export async function ensureWebBuild (): Promise<void> {
  if (isFresh()) return
  mkdirSync(path.dirname(LOCK), { recursive: true })
  const deadline = Date.now() + STALE_LOCK_MS
  for (;;) {
    try {
      mkdirSync(LOCK)
      break
    } catch {
      if (statSync(LOCK, { throwIfNoEntry: false }) && Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) {
        rmSync(LOCK, { recursive: true, force: true })
      }
      if (Date.now() > deadline) throw new Error(`another web build holds ${LOCK}; remove it if no build is running`)
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  }
  try {
    if (isFresh()) return // built by the file that held the lock
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
        { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
      child.once('error', reject)
      child.once('exit', code => code === 0 ? resolve() : reject(new Error(`vite build exited with ${code}`)))
    })
  } finally {
    rmSync(LOCK, { recursive: true, force: true })
  }
}

/** Debian's chromium (CHROMIUM_PATH overrides). Missing chromium fails the test: CI installs it. */
export function chromiumPath (): string {
  const fromEnv = process.env.CHROMIUM_PATH
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH=${fromEnv} does not exist`)
    return fromEnv
  }
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8' }).trim()
      if (found) return found
    } catch {}
  }
  throw new Error('chromium is not installed: the browser tests need Debian\'s chromium ' +
    '(apt-get install chromium; .ci/run installs it) or CHROMIUM_PATH')
}

export interface TestBrowser {
  browser: Browser
  /** a fresh context (cookies, storage) with a laptop-sized viewport */
  context: (opts?: { phone?: boolean }) => Promise<BrowserContext>
  close: () => Promise<void>
}

/**
 * Chromium with a fresh profile. Every page's console errors (CSP violations among them),
 * uncaught exceptions and alert/prompt dialogs are collected in `problems`.
 */
export async function launchBrowser (problems: string[] = []): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS })
  const contexts: BrowserContext[] = []
  return {
    browser,
    context: async ({ phone = false } = {}) => {
      const ctx = await browser.newContext(phone
        ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
        : { viewport: { width: 1280, height: 860 } })
      ctx.on('page', page => watchPage(page, problems))
      contexts.push(ctx)
      return ctx
    },
    close: async () => {
      for (const c of contexts) await c.close().catch(() => {})
      await browser.close()
    }
  }
}

function watchPage (page: Page, problems: string[]): void {
  page.on('dialog', d => {
    // confirm() is how the UI asks before a destructive action: tests accept those
    if (d.type() === 'confirm') {
      void d.accept()
      return
    }
    problems.push(`dialog ${d.type()}: ${d.message()}`)
    void d.dismiss()
  })
  page.on('pageerror', err => problems.push(`page error: ${err.message}`))
  page.on('console', msg => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`)
  })
}

/** Logs in through the form, as a person would. */
export async function loginAsAdmin (page: Page, baseUrl: string, password = ADMIN_PASSWORD): Promise<void> {
  await page.goto(`${baseUrl}/admin`)
  await page.locator('#password').fill(password)
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.getByRole('button', { name: 'Log out' }).waitFor()
}

/** docs/screenshots/<name>.png, the README's pictures: the whole page, or what fits the window. */
export async function screenshot (page: Page, name: string, { fullPage = true } = {}): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage })
}
