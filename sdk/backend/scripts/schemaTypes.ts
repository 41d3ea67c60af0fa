// `npm run sdk:types`: generates sdk/backend/src/schema.ts from openapi.yaml with openapi-typescript.
// test/sdk-backend-types.test.ts generates it again in memory and fails when the checked-in file
// differs, so the spec and the client's types cannot drift apart.
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import openapiTS, { astToString } from 'openapi-typescript'
import { parse } from 'yaml'

export const SPEC = new URL('../../../openapi.yaml', import.meta.url)
// a .ts file rather than a .d.ts: tsc does not copy .d.ts inputs into its output, and the
// package's index.d.ts imports these types
export const SCHEMA_TYPES = new URL('../src/schema.ts', import.meta.url)

const HEADER = [
  '// Generated from openapi.yaml by `npm run sdk:types` (sdk/backend/scripts/schemaTypes.ts): do not edit.',
  '// test/sdk-backend-types.test.ts fails when this file differs from what the spec generates.',
  '/* eslint-disable */',
  ''
].join('\n')

/** The text of src/schema.ts for the spec as it is now. */
export async function schemaTypes (): Promise<string> {
  const spec = parse(await readFile(SPEC, 'utf8'))
  dropRequiredOnlyAnyOf(spec)
  const ast = await openapiTS(spec, {
    // `data: {type: object}` is any JSON object, not one without keys (Record<string, never>)
    emptyObjectsUnknown: true,
    // a field with a default may be left out of a request (ttl, priority): not required
    defaultNonNullable: false
  })
  return HEADER + astToString(ast)
}

/**
 * SendRequest says "at least one of title, body, data" as `anyOf: [{required: [title]}, …]`.
 * openapi-typescript 7 turns each such branch into `unknown` and unions it with the object, so
 * the whole type became `unknown`; JSON Schema means an intersection. These constraints are
 * dropped before generating (the server still enforces them; src/index.ts states the rule as a
 * TypeScript type).
 */
function dropRequiredOnlyAnyOf (node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(dropRequiredOnlyAnyOf)
    return
  }
  if (node === null || typeof node !== 'object') return
  const schema = node as Record<string, unknown>
  const anyOf = schema.anyOf
  const requiredOnly = (b: unknown): boolean =>
    b !== null && typeof b === 'object' && Object.keys(b).join() === 'required'
  if (Array.isArray(anyOf) && anyOf.every(requiredOnly)) {
    delete schema.anyOf
  }
  Object.values(schema).forEach(dropRequiredOnlyAnyOf)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(SCHEMA_TYPES, await schemaTypes())
  console.log(`wrote ${fileURLToPath(SCHEMA_TYPES)}`)
}
