// What shutdown and the MQTT outgoing queue rely on from server/db/batching.ts, beyond
// batching.test.ts: OrderedBatcher splits at maxBatch without losing order and close() drains
// everything queued; FlushBatch never runs two writes at once, and a flush() returns only once
// a write already running (the timer's) is done, so `await flush()` at shutdown means written.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { FlushBatch, OrderedBatcher } from '../server/db/batching.js'

/**
 * A write that records its items, counts how many run at once, and finishes when released.
 * `started(n)` resolves once n writes have begun.
 */
function gatedWrites<T> (): {
  writes: T[][]
  done: T[][]
  maxRunning: () => number
  release: () => void
  started: (n: number) => Promise<void>
  write: (items: T[]) => Promise<void>
} {
  const writes: T[][] = []
  const done: T[][] = []
  let running = 0
  let maxRunning = 0
  let open: Array<() => void> = []
  let watchers: Array<() => void> = []
  return {
    writes,
    done,
    maxRunning: () => maxRunning,
    release: () => { const o = open; open = []; for (const f of o) f() },
    started: n => new Promise(resolve => {
      const check = (): void => { if (writes.length >= n) resolve(); else watchers.push(check) }
      check()
    }),
    write: async items => {
      writes.push(items)
      running++
      maxRunning = Math.max(maxRunning, running)
      const w = watchers
      watchers = []
      for (const f of w) f()
      await new Promise<void>(resolve => open.push(resolve))
      running--
      done.push(items)
    }
  }
}

const silent = pino({ level: 'silent' })
const turn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

test('OrderedBatcher: a backlog past maxBatch goes in batches of at most maxBatch, in push order, once', async () => {
  const writes: number[][] = []
  let running = 0
  let maxRunning = 0
  const batcher = new OrderedBatcher<number>(async items => {
    writes.push(items)
    maxRunning = Math.max(maxRunning, ++running)
    await turn()
    running--
  }, 4)
  const settled: number[] = []
  await Promise.all(Array.from({ length: 11 }, (_, n) => batcher.push(n).then(() => { settled.push(n) })))
  assert.deepEqual(writes, [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]])
  assert.equal(maxRunning, 1, 'one batch at a time')
  assert.deepEqual(settled, Array.from({ length: 11 }, (_, n) => n), 'callers hear back in push order')
})

test('OrderedBatcher: close() waits for the batch in flight and all queued behind it, and refuses more', async () => {
  const w = gatedWrites<string>()
  const batcher = new OrderedBatcher<string>(w.write, 2)
  const pushes = ['a', 'b', 'c', 'd'].map(item => batcher.push(item))
  await w.started(1)
  let closed = false
  const closing = batcher.close().then(() => { closed = true })
  await assert.rejects(batcher.push('late'), /destroyed/, 'nothing is taken once closing')
  w.release()
  await w.started(2)
  await turn()
  assert.equal(closed, false, 'still writing what was queued')
  w.release()
  await w.started(3)
  w.release()
  await closing
  await Promise.all(pushes)
  assert.deepEqual(w.done, [['a'], ['b', 'c'], ['d']], 'every queued item written before close() returned')
})

test('FlushBatch: flush() with nothing new waits for the write already running', async () => {
  const w = gatedWrites<string>()
  const batch = new FlushBatch<string>(w.write, silent, 'marking devices offline', 1)
  batch.add('a')
  // the timer starts this write, not the test: as when shutdown comes during one
  await w.started(1)
  let flushed = false
  const shutdown = batch.flush().then(() => { flushed = true })
  await turn()
  assert.equal(flushed, false, 'the write in progress is not done')
  w.release()
  await shutdown
  assert.deepEqual(w.done, [['a']])
})

test('FlushBatch: adds during a write go in the next one, never concurrently, each once, in order', async () => {
  const w = gatedWrites<string>()
  const batch = new FlushBatch<string>(w.write, silent, 'marking devices offline', 1)
  batch.add('a')
  await w.started(1)
  // the timer is armed again by these and fires while 'a' is written; an explicit flush joins it
  batch.add('b')
  batch.add('c')
  const shutdown = batch.flush()
  await turn()
  assert.deepEqual(w.writes, [['a']], 'the second write waits for the first')
  w.release()
  await w.started(2)
  w.release()
  await shutdown
  assert.deepEqual(w.done, [['a'], ['b', 'c']], 'flush() returned with b and c written')
  assert.equal(w.maxRunning(), 1)
  batch.add('d')
  const last = batch.flush()
  await w.started(3)
  w.release()
  await last
  assert.deepEqual(w.writes, [['a'], ['b', 'c'], ['d']])
})
