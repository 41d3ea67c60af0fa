// The backend client's types are generated from openapi.yaml (npm run sdk:types). Generated again
// here, in memory: a spec change without regenerating fails the run, so the two never drift.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { SCHEMA_TYPES, schemaTypes } from '../sdk/backend/scripts/schemaTypes.js'

test('sdk/backend/src/schema.ts is what openapi.yaml generates', async () => {
  const generated = (await schemaTypes()).split('\n')
  const checkedIn = (await readFile(SCHEMA_TYPES, 'utf8')).split('\n')
  const line = generated.findIndex((text, i) => text !== checkedIn[i])
  const at = line === -1 && checkedIn.length !== generated.length ? generated.length : line
  assert.equal(at, -1, `sdk/backend/src/schema.ts differs from openapi.yaml from line ${at + 1} ` +
    `(generated ${JSON.stringify(generated[at])}, checked in ${JSON.stringify(checkedIn[at])}): run npm run sdk:types`)
})
