// KeyedBatcher (server/db/batching.ts): what devices connecting together ask of the database
// goes in shared statements, and what a key asked for again while it waits gets.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyedBatcher } from '../server/db/batching.js'

/** A run that records each batch it is given and answers `${key}:${arg}:${batch number}` once released. */
function recorder (): {
  batches: Array<Array<[string, number]>>
  release: () => void
  run: (requests: Array<[string, number]>) => Promise<Map<string, string>>
} {
  const batches: Array<Array<[string, number]>> = []
  let open: Array<() => void> = []
  return {
    batches,
    release: () => { const o = open; open = []; for (const f of o) f() },
    run: async requests => {
      batches.push(requests)
      const n = batches.length
      await new Promise<void>(resolve => open.push(resolve))
      return new Map(requests.map(([key, arg]) => [key, `${key}:${arg}:${n}`]))
    }
  }
}

/** Lets the batcher's promise chain move on to its next batch. */
const turn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

test('a lone request goes at once; what arrives meanwhile goes together in the next batch', async () => {
  const r = recorder()
  const b = new KeyedBatcher<number, string>(r.run, 'none')
  const a = b.get('a', 1)
  await turn()
  const rest = [b.get('b', 2), b.get('c', 3)]
  assert.deepEqual(r.batches, [[['a', 1]]], 'the first went alone, the others wait for it')
  r.release()
  assert.equal(await a, 'a:1:1')
  await turn()
  assert.deepEqual(r.batches[1], [['b', 2], ['c', 3]])
  r.release()
  assert.deepEqual(await Promise.all(rest), ['b:2:2', 'c:3:2'])
})

const repeats = [
  ['share', 'runs once and both callers get its answer', ['k:1:2', 'k:1:2']],
  ['once', 'runs once, the first caller gets the answer and the second none', ['k:1:2', 'none']]
] as const
for (const [repeat, what, answers] of repeats) {
  test(`${repeat}: a key asked for twice in one batch ${what}`, async () => {
    const r = recorder()
    const b = new KeyedBatcher<number, string>(r.run, 'none', { repeat })
    const first = b.get('x', 1)
    await turn()
    const twice = [b.get('k', 1), b.get('k', 2)]
    r.release(); await first; await turn()
    assert.deepEqual(r.batches[1], [['k', 1]], 'one run, with the first argument')
    r.release()
    assert.deepEqual(await Promise.all(twice), answers)
  })
}

test('a failed batch rejects every caller in it; the next batch still runs', async () => {
  let calls = 0
  const b = new KeyedBatcher<number, string>(async requests => {
    calls++
    if (calls === 1) throw new Error('database unavailable')
    return new Map(requests.map(([key]) => [key, 'ok']))
  }, 'none')
  await assert.rejects(b.get('a', 1), /database unavailable/)
  assert.equal(await b.get('a', 1), 'ok')
})
