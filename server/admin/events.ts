import type { Request, Response } from 'express'
import type { Pool } from '../db/pool.js'
import type { Logger } from '../log.js'
import { readOverview, type Overview } from '../store/adminStats.js'
import { messageFingerprint } from '../store/adminLog.js'
import { liveAdminSessions } from '../store/adminSessions.js'

// How often open admin pages get fresh overview figures. One read per process serves every stream.
export const OVERVIEW_EVERY_MS = 3_000
// How often a watched message's deliveries are checked for changes (a cheap fingerprint read;
// the full detail is re-read and pushed only when it changed).
export const WATCH_EVERY_MS = 1_000
// Long-lived streams re-check their session this often, so a logout or expiry elsewhere ends them.
const SESSION_CHECK_EVERY_MS = 30_000

interface Stream {
  res: Response
  session: string
  watch?: string
  /** the watched message's last fingerprint sent */
  fingerprint?: string
}

/**
 * The admin's live channel: Server-Sent Events at GET /admin/api/events[?watch=<message id>].
 * Events: `overview` (the overview figures, every few seconds), `message` (a watched
 * message's detail, whenever its deliveries changed), `logout` (the session ended).
 *
 * Changes are found by polling Postgres rather than by hooks in the delivery engine, so a
 * delivery acknowledged on another Herald process shows up too.
 */
export class AdminEvents {
  private readonly streams = new Set<Stream>()
  private timers: NodeJS.Timeout[] = []
  private overview: Overview | undefined
  private busy = new Set<string>()
  private closed = false

  constructor (
    private readonly pool: Pool,
    private readonly log: Logger,
    private readonly messageDetail: (id: string) => Promise<unknown>
  ) {}

  get size (): number {
    return this.streams.size
  }

  open (req: Request, res: Response, watch: string | undefined): void {
    if (this.closed) {
      res.status(503).end()
      return
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // proxies (nginx) must not buffer the stream
      'X-Accel-Buffering': 'no'
    })
    res.write('retry: 3000\n\n')
    const stream: Stream = { res, session: res.locals.adminSession!, watch }
    this.streams.add(stream)
    req.on('close', () => {
      this.streams.delete(stream)
      if (this.streams.size === 0) this.stopTimers()
    })
    this.startTimers()
    // the first figures at once, not after the first tick (a tick already running sends them)
    if (this.overview) this.send(stream, 'overview', this.overview)
    else void this.tick('overview', () => this.pushOverview())
    if (watch !== undefined) void this.tick('watch', () => this.checkWatched([stream]))
  }

  /** Ends the streams of a session that logged out. */
  endSession (idHash: string): void {
    for (const s of this.streams) {
      if (s.session === idHash) this.end(s, 'logout')
    }
  }

  /** Ends every stream (server shutdown), so the HTTP server can close. */
  close (): void {
    this.closed = true
    this.stopTimers()
    for (const s of this.streams) this.end(s, 'shutdown')
  }

  private end (s: Stream, reason: string): void {
    this.send(s, 'logout', { reason })
    s.res.end()
    this.streams.delete(s)
  }

  private startTimers (): void {
    if (this.timers.length > 0 || this.closed) return
    const every = (name: string, ms: number, job: () => Promise<void>): void => {
      const t = setInterval(() => { void this.tick(name, job) }, ms)
      t.unref()
      this.timers.push(t)
    }
    every('overview', OVERVIEW_EVERY_MS, () => this.pushOverview())
    every('watch', WATCH_EVERY_MS, () => this.checkWatched([...this.streams].filter(s => s.watch !== undefined)))
    every('sessions', SESSION_CHECK_EVERY_MS, () => this.checkSessions())
  }

  private stopTimers (): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
    this.overview = undefined
  }

  /** Runs a job unless the previous run of it is still going (a slow database never piles up reads). */
  private async tick (name: string, job: () => Promise<void>): Promise<void> {
    if (this.busy.has(name) || this.closed) return
    this.busy.add(name)
    try {
      await job()
    } catch (err) {
      this.log.warn({ job: name, err: (err as Error).message }, 'admin live update failed')
    } finally {
      this.busy.delete(name)
    }
  }

  private async pushOverview (): Promise<void> {
    if (this.streams.size === 0) return
    this.overview = await readOverview(this.pool)
    for (const s of this.streams) this.send(s, 'overview', this.overview)
  }

  private async checkWatched (streams: Stream[]): Promise<void> {
    const byMessage = new Map<string, Stream[]>()
    for (const s of streams) byMessage.set(s.watch!, [...(byMessage.get(s.watch!) ?? []), s])
    for (const [id, watchers] of byMessage) {
      const fingerprint = await messageFingerprint(this.pool, id)
      const stale = watchers.filter(s => s.fingerprint !== fingerprint)
      if (stale.length === 0 || fingerprint === undefined) continue
      const detail = await this.messageDetail(id)
      for (const s of stale) {
        s.fingerprint = fingerprint
        this.send(s, 'message', detail)
      }
    }
  }

  private async checkSessions (): Promise<void> {
    const live = await liveAdminSessions(this.pool, [...new Set([...this.streams].map(s => s.session))])
    for (const s of this.streams) if (!live.has(s.session)) this.end(s, 'session expired')
  }

  private send (s: Stream, event: string, data: unknown): void {
    if (s.res.writableEnded) return
    s.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }
}
