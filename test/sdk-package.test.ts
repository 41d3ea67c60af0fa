// The device SDK as a team gets it: `npm pack` builds it (prepack), the tarball is installed into
// a fresh app the way npm would (extracted under node_modules, mqtt beside it), and then
// - the README's example runs in Chromium, the browser bundle loaded through the package's
//   `browser` export and an import map, against a real Herald: the push arrives, its
//   `displayed` receipt reaches the server, and the device id survives a reload;
// - Node imports the package (its `default` export) and receives a push;
// - a TypeScript file using it type-checks against the packed .d.ts.
// No registry is involved.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import { startTestHerald, type TestHerald } from './helpers/herald.js'
import { launchBrowser, type TestBrowser } from './helpers/browser.js'
import { PROJECT_ROOT } from './helpers/root.js'
import { sendPush, waitForDelivery } from './helpers/sdk.js'
import { installTarball, packPackage, typeCheck } from './helpers/pack.js'

const root = PROJECT_ROOT
const sdk = path.join(root, 'sdk/js')

let h: TestHerald
let tmp: string
let installed: string
let pkg: { exports: Record<string, Record<string, string>> }
let b: TestBrowser | undefined
let appServer: Server | undefined
const problems: string[] = []

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'herald-sdk-js-'))
  h = await startTestHerald()
})

after(async () => {
  await b?.close()
  appServer?.close()
  await h?.stop()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

test('npm pack builds the package with its browser bundle, types and README', async () => {
  const { tarball, files } = await packPackage('js', ['package.json', 'tsconfig.json', 'build.mjs', 'README.md', 'src'],
    tmp)
  for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/browser/herald.js']) {
    assert.ok(files.includes(f), `the tarball holds ${f}: ${files.join(', ')}`)
  }
  assert.ok(!files.some(f => f.startsWith('node_modules/') || f === 'build.mjs'), files.join(', '))

  // npm would install the dependency beside it
  installed = await installTarball(tarball, path.join(tmp, 'app'), '@herald-push/client', ['mqtt'])
  pkg = JSON.parse(await readFile(path.join(installed, 'package.json'), 'utf8'))
  const bundle = await readFile(path.join(installed, pkg.exports['.']!.browser!))
  assert.doesNotMatch(bundle.toString(), /from\s*["'](node:|mqtt["'])/, 'the browser bundle imports nothing')
})

test('the README example runs in Chromium from the browser bundle: the push arrives and is marked displayed',
  async () => {
    assert.ok(installed, 'the package was installed by the previous test')
    const readme = await readFile(path.join(sdk, 'README.md'), 'utf8')
    const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.ok(example !== undefined && example.includes('wss://push.example.com/mqtt'), 'the README has a js example')
    const user = 'lena'

    const app = await serveApp(example.replace('wss://push.example.com/mqtt', h.wsUrl), user)
    b = await launchBrowser(problems)
    const ctx = await b.context()
    await ctx.grantPermissions(['notifications'], { origin: app })
    const page = await ctx.newPage()
    const states: string[] = []
    page.on('console', msg => { if (msg.text().startsWith('herald: ')) states.push(msg.text().slice(8)) })
    await page.goto(`${app}/`)
    const deviceId = await storedDeviceId(page, user)
    await waitForState(page, states, 'connected')

    const sent = await sendPush(h.api, { to: { user }, title: 'Hello from the README', body: 'in Chromium' })
    assert.equal(sent.recipients, 1)
    await waitForDelivery(h.api, sent.id, deviceId, d => d.displayedAt !== null, 'displayed')

    // a reload is an app restart: the same device, and what was sent meanwhile arrives
    states.length = 0
    await page.reload()
    assert.equal(await storedDeviceId(page, user), deviceId)
    await waitForState(page, states, 'connected')
    const second = await sendPush(h.api, { to: { user }, title: 'After the reload' })
    await waitForDelivery(h.api, second.id, deviceId, d => d.displayedAt !== null, 'displayed')
    assert.deepEqual(problems, [])
  })

test('Node imports the installed package and receives a push; the code type-checks against the packed types',
  async () => {
    assert.ok(installed, 'the package was installed by the previous test')
    const app = path.dirname(path.dirname(path.dirname(installed)))
    // plain JavaScript as a Node app would write it, type-checked (checkJs) against the packed .d.ts
    await writeFile(path.join(app, 'device.js'), `
import { createHeraldClient, memoryStorage } from '@herald-push/client'

const herald = createHeraldClient({
  url: String(process.env.HERALD_WS_URL), token: async () => String(process.env.HERALD_TOKEN), storage: memoryStorage()
})
herald.on('error', error => console.error(error.code, error.fatal))
herald.on('message', message => {
  console.log(\`\${herald.deviceId} got \${message.title}\`)
  void message.displayed()
})
await herald.whenConnected()
console.log('connected')
`)
    // checked while the device runs: tsc takes a few seconds
    const checked = typeCheck(app, ['device.js'])

    const child = execFile(process.execPath, ['device.js'], {
      cwd: app, env: { ...process.env, HERALD_WS_URL: h.wsUrl, HERALD_TOKEN: await h.token('nils') }
    })
    let out = ''
    const got = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('connected\n') && !out.includes('sent')) {
          out += 'sent\n'
          sendPush(h.api, { to: { user: 'nils' }, title: 'to node' }).catch(reject)
        }
        if (/ got to node\n/.test(out)) resolve()
      })
      child.once('exit', code => reject(new Error(`node exited with ${code}: ${out}`)))
    })
    try {
      await got
    } finally {
      child.kill()
    }
    assert.match(out, /^[0-9a-f-]{36} got to node$/m)
    await checked
  })

/**
 * The app, served by the test on 127.0.0.1: a page with an import map, the example, its backend's
 * token route, and the installed package. A real server rather than page.route(): Chromium blocks
 * a page of unknown address (a routed response has none) from opening a socket to loopback.
 */
async function serveApp (example: string, user: string): Promise<string> {
  const bundle = `/node_modules/@herald-push/client/${pkg.exports['.']!.browser!.replace(/^\.\//, '')}`
  const page = `<!doctype html><meta charset="utf-8"><title>app</title>
<script type="importmap">{"imports": {"@herald-push/client": "${bundle}"}}</script>
<script type="module" src="/app.js"></script>`
  const server = createServer((req, res) => {
    const reply = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { 'content-type': type }).end(body)
    }
    const url = new URL(req.url ?? '/', 'http://app')
    if (url.pathname === '/') return reply(200, 'text/html', page)
    if (url.pathname === '/app.js') return reply(200, 'text/javascript', example)
    if (url.pathname === '/favicon.ico') return reply(204, 'image/x-icon', '')
    if (url.pathname === '/my-backend/herald-token') {
      h.token(user).then(token => reply(200, 'application/json', JSON.stringify({ token })),
        (err: Error) => reply(500, 'text/plain', err.message))
      return
    }
    const prefix = '/node_modules/@herald-push/client/'
    if (url.pathname.startsWith(prefix)) {
      readFile(path.join(installed, url.pathname.slice(prefix.length)))
        .then(body => reply(200, 'text/javascript', body), () => reply(404, 'text/plain', 'not found'))
      return
    }
    reply(404, 'text/plain', 'not found')
  })
  appServer = server
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function storedDeviceId (page: Page, user: string): Promise<string> {
  const handle = await page.waitForFunction(key => localStorage.getItem(key), `herald:device:${user}`)
  const id = await handle.jsonValue()
  assert.match(id ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  return id!
}

/** Resolves once the page logged `herald: <state>` (the README example logs every state). */
async function waitForState (page: Page, states: string[], state: string): Promise<void> {
  if (states.includes(state)) return
  await page.waitForEvent('console', { predicate: msg => msg.text() === `herald: ${state}`, timeout: 10_000 })
    .catch(err => assert.fail(`${(err as Error).message}; states: ${states.join(', ')}; ${problems.join('; ')}`))
}
