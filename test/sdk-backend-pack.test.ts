// The backend client as a team gets it (issue 11): `npm pack` builds it (prepack: tsc), the
// tarball is installed into a fresh project the way npm would (extracted under node_modules), and
// the README's example runs there with plain node against a real Herald, and type-checks against
// the packed .d.ts through the package's `exports`. No registry is involved.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { API_KEY, startTestHerald, type TestHerald } from './helpers/herald.js'
import { installTarball, packPackage, typeCheck } from './helpers/pack.js'
import { PROJECT_ROOT } from './helpers/root.js'

const run = promisify(execFile)
// the sources, not the test run's compiled tree
const sdk = path.join(PROJECT_ROOT, 'sdk/backend')

let h: TestHerald
let tmp: string

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'herald-sdk-pack-'))
  h = await startTestHerald()
})

after(async () => {
  await h?.stop()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

test('npm pack builds the package; its README example runs from the tarball and type-checks', async () => {
  const { tarball, files } = await packPackage('backend', ['package.json', 'tsconfig.json', 'README.md', 'src'], tmp)
  for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/schema.d.ts']) {
    assert.ok(files.includes(f), `the tarball holds ${f}: ${files.join(', ')}`)
  }
  assert.ok(!files.some(f => f.startsWith('scripts/') || f.startsWith('node_modules/')), files.join(', '))

  const app = path.join(tmp, 'app')
  await installTarball(tarball, app, '@herald-push/backend')
  const readme = await readFile(path.join(sdk, 'README.md'), 'utf8')
  const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1]
  assert.ok(example, 'the README has a js example')
  await writeFile(path.join(app, 'example.js'), example)

  const { stdout } = await run(process.execPath, ['example.js'], {
    cwd: app, env: { ...process.env, HERALD_URL: h.url, HERALD_API_KEY: API_KEY }
  })
  assert.match(stdout, /^message [0-9a-f-]{36} queued for 0 devices$/m)
  assert.match(stdout, /^400 invalid-request \[\s*\{\s*field: 'to\.user'/m)

  // what a TypeScript user's editor and tsc see: the example checked against the packed types
  await typeCheck(app, ['example.js'])
})
