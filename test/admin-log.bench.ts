// `npm run bench:admin`: the admin delivery log and overview against a million deliveries.
//
// Seeds a fresh database (on TEST_DATABASE_URL / DATABASE_URL, or an embedded Postgres) with
// 450,000 user messages to 20,000 devices plus 5 broadcasts to every device (about 1,000,000
// deliveries), then times log pages under each filter: first page and a page deep in the
// history, each the median of several runs, plus EXPLAIN ANALYZE of the main queries. Fails
// (exit 1) if a page takes more than 300 ms. Not part of `npm test`: seeding takes about a minute.
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startEmbeddedPostgres } from '../server/db/embedded.js'
import { listMessageLog, type AdminLogFilter, type AdminLogKey } from '../server/store/adminLog.js'
import { readOverview } from '../server/store/adminStats.js'
import { listDeliveries, type LogFilter } from '../server/store/messages.js'
import { createTestDatabase } from './helpers/db.js'
import { seedDeliveryHistory } from './helpers/adminSeed.js'

const PAGE = Number(process.env.BENCH_PAGE ?? 25)
const RUNS = 7
const BUDGET_MS = 300

let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined
let tempDir: string | undefined
if (!process.env.TEST_DATABASE_URL && !process.env.DATABASE_URL) {
  tempDir = await mkdtemp(path.join(os.tmpdir(), 'herald-bench-'))
  embedded = await startEmbeddedPostgres({ dataDir: tempDir, log: { info () {}, warn: (o, m) => console.error(m, o) } })
  process.env.TEST_DATABASE_URL = embedded.url
}
const db = await createTestDatabase()
let failed = false
try {
  const base = new Date()
  let t = Date.now()
  const seeded = await seedDeliveryHistory(db.pool, {
    messages: 450_000, users: 10_000, topicMessages: 5, spacingMs: 5_000, base
  })
  console.log(`seeded ${seeded.messages.toLocaleString()} messages, ` +
    `${seeded.deliveries.toLocaleString()} deliveries, ${seeded.devices.toLocaleString()} devices ` +
    `in ${((Date.now() - t) / 1000).toFixed(1)} s`)

  const day = 86_400_000
  const scenarios: Array<[string, AdminLogFilter]> = [
    ['no filter', {}],
    ['user', { user: 'user-42' }],
    ['device', { device: 'user-4243-dev-1' }],
    ['status queued (5 %)', { status: 'queued' }],
    ['status revoked (1 %)', { status: 'revoked' }],
    ['status delivered, until 20 days ago', { status: 'delivered', until: new Date(base.getTime() - 20 * day) }],
    ['user + status expired', { user: 'user-42', status: 'expired' }],
    ['time range (one day, 10 days ago)',
      { since: new Date(base.getTime() - 11 * day), until: new Date(base.getTime() - 10 * day) }],
    ['title text, common ("digest")', { text: 'digest' }],
    ['title text, rare ("zebra")', { text: 'zebra' }],
    ['title text + user', { text: 'order', user: 'user-42' }],
    ['title text + status queued', { text: 'digest', status: 'queued' }],
    ['message id', { messageId: '00000000-0000-4000-8000-000000000003' }],
    ['status expired (6 %)', { status: 'expired' }]
  ]

  const time = async (
    f: AdminLogFilter, after: AdminLogKey | undefined
  ): Promise<{ ms: number, rows: number, next: AdminLogKey | undefined }> => {
    const samples: number[] = []
    let result: Awaited<ReturnType<typeof listMessageLog>> | undefined
    for (let i = 0; i < RUNS; i++) {
      const start = performance.now()
      result = await listMessageLog(db.pool, f, after, PAGE)
      samples.push(performance.now() - start)
    }
    samples.sort((a, b) => a - b)
    return { ms: samples[Math.floor(RUNS / 2)], rows: result!.rows.length, next: result!.next }
  }

  console.log(`\nlog pages of ${PAGE} messages, median of ${RUNS} runs ` +
    '(wall clock, including the per-message summary):')
  console.log(`${'filter'.padEnd(40)} ${'page 1'.padStart(9)} ${'page 20'.padStart(9)}  rows`)
  for (const [name, f] of scenarios) {
    const first = await time(f, undefined)
    // page 20: walk there with the cursors, as a person paging would
    let after = first.next
    for (let i = 2; i < 20 && after; i++) after = (await listMessageLog(db.pool, f, after, PAGE)).next
    const deep = after ? await time(f, after) : undefined
    const worst = Math.max(first.ms, deep?.ms ?? 0)
    if (worst > BUDGET_MS) failed = true
    const deepMs = deep ? `${deep.ms.toFixed(1).padStart(6)} ms` : '       —  '
    console.log(`${name.padEnd(40)} ${first.ms.toFixed(1).padStart(6)} ms ${deepMs}  ${first.rows}` +
      (worst > BUDGET_MS ? '   OVER BUDGET' : ''))
  }

  // the REST delivery log (GET /v1/messages): one row per device delivery, same budget
  const restScenarios: Array<[string, Omit<LogFilter, 'limit'>]> = [
    ['REST: no filter', {}],
    ['REST: user', { user: 'user-42' }],
    ['REST: device', { device: 'user-4243-dev-1' }],
    ['REST: status revoked (1 %)', { status: 'revoked' }],
    ['REST: user + status expired', { user: 'user-42', status: 'expired' }],
    ['REST: status queued', { status: 'queued' }],
    ['REST: status expired', { status: 'expired' }],
    ['REST: time range (one day, 10 days ago)',
      { since: new Date(base.getTime() - 11 * day), until: new Date(base.getTime() - 10 * day) }]
  ]
  const REST_PAGE = 50
  type RestPage = Awaited<ReturnType<typeof listDeliveries>>
  const timeRest = async (f: LogFilter): Promise<{ ms: number, page: RestPage }> => {
    const samples: number[] = []
    let page: RestPage = { items: [], next: undefined }
    for (let i = 0; i < RUNS; i++) {
      const start = performance.now()
      page = await listDeliveries(db.pool, f)
      samples.push(performance.now() - start)
    }
    samples.sort((a, b) => a - b)
    return { ms: samples[Math.floor(RUNS / 2)], page }
  }
  console.log(`
REST delivery log pages of ${REST_PAGE} deliveries, median of ${RUNS} runs:`)
  for (const [name, f] of restScenarios) {
    const first = await timeRest({ ...f, limit: REST_PAGE })
    let next = first.page.next
    for (let i = 2; i < 20 && next; i++) {
      next = (await listDeliveries(db.pool, { ...f, limit: REST_PAGE, after: next })).next
    }
    const deep = next ? await timeRest({ ...f, limit: REST_PAGE, after: next }) : undefined
    const worst = Math.max(first.ms, deep?.ms ?? 0)
    if (worst > BUDGET_MS) failed = true
    const deepMs = deep ? `${deep.ms.toFixed(1).padStart(6)} ms` : '       —  '
    console.log(`${name.padEnd(40)} ${first.ms.toFixed(1).padStart(6)} ms ${deepMs}  ${first.page.items.length}` +
      (worst > BUDGET_MS ? '   OVER BUDGET' : ''))
  }

  t = performance.now()
  const o = await readOverview(db.pool)
  console.log(`\noverview: ${(performance.now() - t).toFixed(1)} ms (waiting ${o.waiting.toLocaleString()}, ` +
    `expired last day ${o.expiredLastDay.toLocaleString()})`)

  // the plans behind the figures: every filter seeks an index, none scans deliveries
  const client = await db.pool.connect()
  try {
    const log: string[] = []
    const orig = db.pool.query.bind(db.pool)
    // capture the SQL listMessageLog sends, then EXPLAIN ANALYZE it
    ;(db.pool as any).query = (sql: string, params: unknown[]) => {
      log.push(JSON.stringify({ sql, params }))
      return orig(sql, params)
    }
    for (const [name, f] of [scenarios[1], scenarios[3], scenarios[5], scenarios[9], scenarios[13]]) {
      log.length = 0
      await listMessageLog(db.pool, f, undefined, PAGE)
      const { sql, params } = JSON.parse(log[0])
      const plan = await client.query(`explain (analyze, costs off, timing on, summary on) ${sql}`, params)
      console.log(`\nEXPLAIN ANALYZE, ${name}:\n  ${plan.rows.map(r => r['QUERY PLAN']).join('\n  ')}`)
    }
    ;(db.pool as any).query = orig
  } finally {
    client.release()
  }
} finally {
  await db.drop()
  await embedded?.stop()
  if (tempDir) await rm(tempDir, { recursive: true, force: true })
}
console.log(failed ? `\nFAIL: a page took more than ${BUDGET_MS} ms` : `\nOK: every page under ${BUDGET_MS} ms`)
process.exit(failed ? 1 : 0)
