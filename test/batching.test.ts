// FlushBatch and OrderedBatcher (server/db/batching.ts): how many writes a burst costs, and in what
// order callers hear back. KeyedBatcher has its own file (keyed-batcher.test.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { FlushBatch, KeyedChain, OrderedBatcher } from '../server/db/batching.js'

/** A write that records what it was given and finishes when released. */
function gatedWrites<T> (): { writes: T[][], release: () => void, write: (items: T[]) => Promise<void> } {
  const writes: T[][] = []
  let open: Array<() => void> = []
  return {
    writes,
    release: () => { const o = open; open = []; for (const f of o) f() },
    write: async items => {
      writes.push(items)
      await new Promise<void>(resolve => open.push(resolve))
    }
  }
}

function capturingLogger (): { log: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() }
  })
  return { log: pino({ level: 'warn' }, sink), lines }
}

test('FlushBatch: a burst is one write; what arrives during it waits for the next', async () => {
  const w = gatedWrites<string>()
  const batch = new FlushBatch<string>(w.write, capturingLogger().log, 'marking devices offline', 60_000)
  for (const id of ['a', 'b', 'c']) batch.add(id)
  assert.deepEqual(w.writes, [], 'nothing is written before the flush')
  const first = batch.flush()
  await new Promise(resolve => setImmediate(resolve))
  batch.add('d')
  const second = batch.flush()
  await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(w.writes, [['a', 'b', 'c']], 'one write at a time')
  w.release()
  await first
  await new Promise(resolve => setImmediate(resolve))
  w.release()
  await second
  assert.deepEqual(w.writes, [['a', 'b', 'c'], ['d']])
})

test('FlushBatch: the delay flushes by itself', async () => {
  const written = new Promise<string[]>(resolve => {
    const batch = new FlushBatch<string>(async items => resolve(items), capturingLogger().log, 'test', 1)
    batch.add('x')
    batch.add('y')
  })
  assert.deepEqual(await written, ['x', 'y'])
})

test('FlushBatch: a failed write is logged with its name and count, and the batch goes on', async () => {
  const { log, lines } = capturingLogger()
  let fail = true
  const written: string[][] = []
  const batch = new FlushBatch<string>(async items => {
    if (fail) throw new Error('database down')
    written.push(items)
  }, log, 'marking devices offline', 60_000)
  batch.add('a')
  await batch.flush() // does not throw
  assert.equal(lines.length, 1)
  assert.equal(lines[0].msg, 'marking devices offline failed')
  assert.equal(lines[0].err, 'database down')
  assert.equal(lines[0].count, 1)
  fail = false
  batch.add('b')
  await batch.flush()
  assert.deepEqual(written, [['b']], 'the failed items were dropped, the next ones written')
})

test('OrderedBatcher: callers settle in push order, one batch in flight, a failure fails its batch only', async () => {
  const w = gatedWrites<number>()
  const batcher = new OrderedBatcher<number>(async items => {
    await w.write(items)
    if (items.includes(3)) throw new Error('batch with 3 failed')
  })
  const settled: string[] = []
  const pushes = [1, 2, 3, 4].map(n =>
    batcher.push(n).then(() => settled.push(`ok ${n}`), () => settled.push(`failed ${n}`)))
  await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(w.writes, [[1]], 'a lone push goes at once; the others wait for it')
  w.release()
  await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(w.writes, [[1], [2, 3, 4]], 'what arrived meanwhile is one batch')
  w.release()
  await Promise.all(pushes)
  assert.deepEqual(settled, ['ok 1', 'failed 2', 'failed 3', 'failed 4'])
  const later = batcher.push(5)
  await new Promise(resolve => setImmediate(resolve))
  w.release()
  await later
  await batcher.close()
  await assert.rejects(batcher.push(6), /destroyed/)
})

test('KeyedChain: one key runs in call order, another key does not wait for it', async () => {
  const chain = new KeyedChain()
  const order: string[] = []
  let releaseA: () => void = () => {}
  const a1 = chain.run('a', async () => {
    await new Promise<void>(resolve => { releaseA = resolve })
    order.push('a1')
  })
  const a2 = chain.run('a', async () => { order.push('a2') })
  await chain.run('b', async () => { order.push('b1') })
  assert.deepEqual(order, ['b1'])
  releaseA()
  await Promise.all([a1, a2])
  assert.deepEqual(order, ['b1', 'a1', 'a2'])
  await chain.idle()
})
