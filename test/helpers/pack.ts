// The SDK packages (sdk/js, sdk/backend) as a team gets them: `npm pack` (which builds them
// through prepack) from a copy of the package, so no build output lands in the working tree, the
// tarball extracted into a fresh app's node_modules the way npm installs it, and the app's code
// type-checked against the packed .d.ts. No registry is involved.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cp, mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { PROJECT_ROOT } from './root.js'

const run = promisify(execFile)

/** Packs the package at sdk/`name` from a copy of `entries`; the tarball's path and the files it holds. */
export async function packPackage (name: string, entries: string[], tmp: string):
Promise<{ tarball: string, files: string[] }> {
  const copy = path.join(tmp, `pack-${name}`)
  await mkdir(copy)
  for (const entry of entries) {
    await cp(path.join(PROJECT_ROOT, 'sdk', name, entry), path.join(copy, entry), { recursive: true })
  }
  await symlink(path.join(PROJECT_ROOT, 'node_modules'), path.join(copy, 'node_modules'))
  const env = {
    ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false'
  }
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: copy, env })
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as
    Array<{ filename: string, files: Array<{ path: string }> }>
  return { tarball: path.join(tmp, info!.filename), files: info!.files.map(f => f.path) }
}

/**
 * A fresh ESM app at `app` with the tarball installed as `packageName`, and `dependencies` (names
 * under the project's node_modules) beside it as npm would put them; where it was installed.
 */
export async function installTarball (tarball: string, app: string, packageName: string,
  dependencies: string[] = []): Promise<string> {
  const installed = path.join(app, 'node_modules', packageName)
  await mkdir(installed, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'])
  for (const dep of dependencies) {
    await symlink(path.join(PROJECT_ROOT, 'node_modules', dep), path.join(app, 'node_modules', dep))
  }
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ type: 'module', private: true }))
  return installed
}

/** What a TypeScript user's editor and tsc see: `files` of the app, checked against the packed types. */
export async function typeCheck (app: string, files: string[]): Promise<void> {
  await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'nodenext',
      target: 'es2022',
      strict: true,
      noEmit: true,
      allowJs: true,
      checkJs: true,
      typeRoots: [path.join(PROJECT_ROOT, 'node_modules/@types')],
      types: ['node'],
      // the app's own code is checked against the packed declarations; checking @types/node's
      // declarations themselves was most of tsc's time (they are not ours)
      skipLibCheck: true
    },
    files
  }))
  await run(process.execPath, [path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app })
    .catch((err: { stdout?: string }) => assert.fail(`${files.join(', ')} does not type-check:\n${err.stdout}`))
}
