// The backend client as a team gets it (issue 11): `npm pack` builds it (prepack: tsc), the
// tarball is installed into a fresh project the way npm would (extracted under node_modules), and
// the README's example runs there with plain node against a real Herald, and type-checks against
// the packed .d.ts through the package's `exports`. No registry is involved.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { API_KEY, startTestHerald, type TestHerald } from './helpers/herald.js'
import { PROJECT_ROOT } from './helpers/root.js'

const run = promisify(execFile)
// the sources, not the test run's compiled tree
const root = PROJECT_ROOT
const sdk = path.join(root, 'sdk/backend')

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
  // packed from a copy, so the build output never lands in the working tree (where lint would read it)
  const pkg = path.join(tmp, 'pkg')
  await mkdir(pkg)
  for (const entry of ['package.json', 'tsconfig.json', 'README.md', 'src']) {
    await cp(path.join(sdk, entry), path.join(pkg, entry), { recursive: true })
  }
  await symlink(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'))
  const npmEnv = {
    ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false'
  }
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: pkg, env: npmEnv })
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as
    Array<{ filename: string, files: Array<{ path: string }> }>
  const files = info!.files.map(f => f.path)
  for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/schema.d.ts']) {
    assert.ok(files.includes(f), `the tarball holds ${f}: ${files.join(', ')}`)
  }
  assert.ok(!files.some(f => f.startsWith('scripts/') || f.startsWith('node_modules/')), files.join(', '))

  const app = path.join(tmp, 'app')
  const installed = path.join(app, 'node_modules/@herald-push/backend')
  await mkdir(installed, { recursive: true })
  await run('tar', ['-xzf', path.join(tmp, info!.filename), '-C', installed, '--strip-components=1'])
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ type: 'module', private: true }))
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
  await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'nodenext',
      target: 'es2022',
      strict: true,
      noEmit: true,
      allowJs: true,
      checkJs: true,
      typeRoots: [path.join(root, 'node_modules/@types')],
      types: ['node']
    },
    files: ['example.js']
  }))
  await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app })
    .catch((err: { stdout?: string }) => assert.fail(`the README example does not type-check:\n${err.stdout}`))
})
