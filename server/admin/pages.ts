import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import express, { Router, type Response } from 'express'

/**
 * Where `vite build` put the front end (vite.config.ts: dist/web). This file runs from
 * server/admin (tsx) or dist/server/admin (compiled); a build is recognised by its manifest.
 */
export function defaultWebDir (): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url))
  return [path.resolve(here, '../../dist/web'), path.resolve(here, '../../web')]
    .find(dir => existsSync(path.join(dir, '.vite', 'manifest.json')))
}

/**
 * The pages' Content-Security-Policy: scripts and styles only from files of this server (no
 * inline script, no eval), data only from this origin and its MQTT WebSocket, never framed.
 * Message content is untrusted; React renders it as text, and this policy is the second wall.
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

function securityHeaders (res: Response): void {
  res.setHeader('Content-Security-Policy', PAGE_CSP)
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Referrer-Policy', 'no-referrer')
  res.setHeader('X-Frame-Options', 'DENY')
}

/**
 * /admin (and every /admin/… page path: the UI routes in the browser), /demo, and the built
 * assets under /web. The pages hold no data: what they show comes from /admin/api, which needs
 * the session.
 */
export function pagesRouter (webDir: string | undefined): Router {
  const router = Router()
  if (webDir === undefined) {
    const missing = (_req: unknown, res: Response): void => {
      securityHeaders(res)
      res.status(503).type('text/plain')
        .send('The web UI is not built. Run `npm run build` (or `npx vite build`) and restart.\n')
    }
    router.get(['/admin', '/admin/{*page}', '/demo'], missing)
    return router
  }
  router.use('/web', express.static(webDir, {
    index: false,
    setHeaders: (res, file) => {
      securityHeaders(res)
      // hashed file names never change content: cache for long; anything else revalidates
      res.setHeader('Cache-Control', /[.-][\w-]{8,}\.(js|css)$/.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache')
    }
  }), (_req, res) => {
    res.status(404).type('text/plain').send('not found\n')
  })
  const page = (name: 'admin' | 'demo') => (_req: unknown, res: Response): void => {
    securityHeaders(res)
    res.setHeader('Cache-Control', 'no-cache')
    res.sendFile(path.join(webDir, name, 'index.html'))
  }
  router.get('/admin', page('admin'))
  router.get('/admin/{*page}', (req, res, next) =>
    req.path.startsWith('/admin/api/') || req.path === '/admin/api' ? next() : page('admin')(req, res))
  router.get('/demo', page('demo'))
  return router
}
