import { readFileSync } from 'node:fs'

/**
 * This build's version, from package.json: shown per process on the admin's Nodes page, so a
 * rolling upgrade can be watched. This file runs from server/ (tsx) or dist/server/ (compiled).
 */
export const HERALD_VERSION: string = (() => {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const text = readFileSync(new URL(path, import.meta.url), 'utf8')
      const pkg = JSON.parse(text) as { name?: string, version?: string }
      if (pkg.name === 'herald' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return 'unknown'
})()
