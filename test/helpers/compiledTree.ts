// The project as JavaScript, for a test run: every .ts file of the project compiled once (esbuild,
// no type check: `npm run typecheck` does that) into a shadow tree that mirrors the project, every
// other file and folder a symlink to the original. Test files then run on plain `node`, and so do
// the servers they start (test/helpers/process.ts), instead of each process compiling what it
// imports through tsx's loader: measured, importing server/app.ts costs 0.55 s of CPU through tsx
// and 0.27 s compiled, and a test run starts ~100 such processes on 2 cores.
//
// Paths stay as in the project (`../openapi.yaml` from test/, `migrations/` beside server/), so
// code that finds files from import.meta.url works unchanged. Each .ts file is there too (a
// symlink), for whatever still runs it through tsx.
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { build } from 'esbuild'

/** Folders taken whole, as one symlink: nothing in them is compiled (web/ is vite's to build). */
const LINKED_WHOLE = new Set(['node_modules', 'dist', 'data', 'test-results', 'bench', 'web', 'docs'])
/** Files left out: vite must find the project's own config, not a compiled copy beside it. */
const NOT_COMPILED = new Set(['vite.config.ts'])

/** Builds the tree at `out` (emptied first) from the project at `root`; returns how many files it compiled. */
export async function buildCompiledTree (root: string, out: string): Promise<number> {
  await rm(out, { recursive: true, force: true })
  // the web build (test/helpers/browser.ts) may create dist/ during the run, in a fresh clone
  // too; the tree's link to it must exist from the start, for the servers to serve dist/web
  await mkdir(path.join(root, 'dist'), { recursive: true })
  const sources: string[] = []
  const walk = async (rel: string): Promise<void> => {
    await mkdir(path.join(out, rel), { recursive: true })
    for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const from = path.join(rel, entry.name)
      if (path.join(root, from) === out) continue
      const source = path.join(root, from)
      const target = path.join(out, from)
      if (entry.isDirectory() && !LINKED_WHOLE.has(entry.name) && !entry.name.startsWith('.')) {
        await walk(from)
        continue
      }
      await symlink(source, target)
      const compiled = entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') &&
        !NOT_COMPILED.has(from)
      if (compiled) sources.push(source)
    }
  }
  await walk('')
  await build({
    entryPoints: sources,
    outdir: out,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // stack traces name the .ts lines (node --enable-source-maps)
    sourcemap: 'inline',
    logLevel: 'error'
  })
  // the tree is ESM like the project: its package.json is the project's (a symlink made above)
  await writeFile(path.join(out, '.compiled-tree'), 'test/helpers/compiledTree.ts\n')
  return sources.length
}
