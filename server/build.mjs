// `npm start` runs this first (package.json `prestart`): it rebuilds the server (tsc → dist/server)
// and the web UI (vite → dist/web) only when their sources changed since that part's last
// successful build, so restarting an installed Herald skips the ~13 s of a full build.
// `npm run build` runs it with --all: both parts, whatever changed.
//
// Plain Node ESM, not TypeScript: it runs before anything is compiled. It lives in server/ because
// it is how the server starts, and so that editing it rebuilds the server too.
//
// "Changed" means a different SHA-256 over each part's source paths and contents (~10 ms), not
// newer mtimes: a touched file rebuilds nothing, and a file copied in with an old mtime (rsync -a,
// tar) or deleted is still noticed. Each part's hash goes into dist/.build-stamp.json only after
// its build succeeded, and is taken out before a build starts, so a build that failed or was
// killed half-way leaves no stamp and runs again on the next start.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** What each part is built from (paths under the project root), the file a finished build leaves, its command. */
const PARTS = {
  server: {
    label: 'the server (tsc)',
    // package-lock.json stands for node_modules: a new TypeScript or @types can change the output
    sources: ['server', 'tsconfig.json', 'package-lock.json'],
    output: 'dist/server/main.js',
    command: ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']
  },
  web: {
    label: 'the web UI (vite build)',
    // the demo page imports the device SDK's sources (sdk/js/src)
    sources: ['web', 'sdk/js/src', 'vite.config.ts', 'package-lock.json'],
    // vite writes the manifest last; server/admin/pages.ts also takes it as the sign of a finished build
    output: 'dist/web/.vite/manifest.json',
    command: ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn']
  }
}

const STAMP = 'dist/.build-stamp.json'

/** Every file under `rel` (a file or a directory), as root-relative paths with / separators, sorted. */
function listFiles (root, rel) {
  const stat = statSync(path.join(root, rel), { throwIfNoEntry: false })
  if (!stat) return []
  if (!stat.isDirectory()) return [rel]
  return readdirSync(path.join(root, rel)).sort().flatMap(name => listFiles(root, `${rel}/${name}`))
}

/** A hash of the paths and contents of every file under `sources`: any edit, addition or removal changes it. */
function sourceHash (root, sources) {
  const hash = createHash('sha256')
  for (const file of sources.flatMap(rel => listFiles(root, rel))) {
    hash.update(`${file}\0`).update(readFileSync(path.join(root, file))).update('\0')
  }
  return hash.digest('hex')
}

function readStamp (root) {
  try {
    return JSON.parse(readFileSync(path.join(root, STAMP), 'utf8'))
  } catch {
    return {} // none yet, or unreadable: every part counts as unbuilt
  }
}

/** Written to a temporary file and renamed, so a crash never leaves half a stamp. */
function writeStamp (root, stamp) {
  const file = path.join(root, STAMP)
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(`${file}.tmp`, JSON.stringify(stamp, null, 2) + '\n')
  renameSync(`${file}.tmp`, file)
}

/** The parts whose sources differ from their last successful build, or whose output is missing. */
function staleParts (root) {
  const stamp = readStamp(root)
  return Object.keys(PARTS).filter(name => {
    const part = PARTS[name]
    return stamp[name] !== sourceHash(root, part.sources) || !existsSync(path.join(root, part.output))
  })
}

/**
 * Builds `parts` one after another, stamping each once it succeeded.
 * Returns the exit code of the first build that failed, or 0.
 */
function build (root, parts) {
  for (const name of parts) {
    const part = PARTS[name]
    // hashed before building: a file edited during the build makes the next start build again
    const hash = sourceHash(root, part.sources)
    const stamp = readStamp(root)
    delete stamp[name]
    writeStamp(root, stamp)
    process.stderr.write(`herald: building ${part.label}\n`)
    const [script, ...args] = part.command
    const result = spawnSync(process.execPath, [path.join(root, script), ...args], { cwd: root, stdio: 'inherit' })
    if (result.status !== 0) {
      const why = result.error ?? `exit ${result.status ?? result.signal}`
      process.stderr.write(`herald: building ${part.label} failed (${why})\n`)
      return result.status || 1
    }
    writeStamp(root, { ...readStamp(root), [name]: hash })
  }
  return 0
}

// `node server/build.mjs [--all]`, from any directory
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
process.exitCode = build(root, process.argv.includes('--all') ? Object.keys(PARTS) : staleParts(root))
