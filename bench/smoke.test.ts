// The benchmark still runs: `npm run bench -- --quick` end to end (real Herald child process,
// bare aedes, Mosquitto when installed, real devices), with a row per scenario. It asserts
// nothing about speed: only that every scenario produced a figure for Herald. It takes minutes,
// so it is not part of `npm test`: `npm run test:bench` runs it, and CI does after `npm test`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runQuick } from './index.js'

test('bench quick mode prints a summary row with a Herald figure for every scenario', { timeout: 300_000 }, async t => {
  const report = await runQuick({
    databaseUrl: process.env.TEST_DATABASE_URL,
    writeJson: false,
    log: line => { if (/ERROR|failed/.test(line)) t.diagnostic(line) }
  })
  const summary = report.markdown.split('## Summary')[1]?.split('\n## ')[0] ?? ''
  const errors = report.scenarios.flatMap(s => s.errors.map(e => `${s.id} ${s.title}: ${e.split('\n')[0]}`))
  const scenarios = [
    [1, 'throughput'], [2, 'latency'], [3, 'fan-out'], [4, 'offline backlog'], [5, 'connections'], [6, 'restart'],
    [7, 'webhooks']
  ] as const
  for (const [id, title] of scenarios) {
    const row = summary.split('\n').find(line => line.startsWith(`| ${id} `))
    assert.ok(row, `no summary row for scenario ${id} ${title}\n${report.markdown}`)
    assert.ok(row.includes(title), row)
    // the third cell is Herald's headline figure: a number (webhooks' slowdown may be negative), not "error"
    const herald = row.split('|')[3]?.trim() ?? ''
    assert.match(herald, /^-?[\d,.]+/, `scenario ${id} has no Herald figure: ${row}\n${errors.join('\n')}`)
  }
})
