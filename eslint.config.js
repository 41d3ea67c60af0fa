// `npm run lint`: standard style for TypeScript (neostandard, as pg-boss and aedes use), plus a
// 120-character line limit. `npm run check` and CI run it.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.data/**'] }),
  {
    rules: {
      '@stylistic/max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }]
    }
  }
]
