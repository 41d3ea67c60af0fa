// `npm run lint`: standard style for TypeScript (neostandard, as pg-boss and aedes use), a
// 120-character line limit, and the server's layers. `npm run check` and CI run it.
import neostandard from 'neostandard'

// The server's layers, lowest first. A module may import from its own layer and those below,
// never from one above: the store never knows about HTTP, a service never about express. The
// two HTTP surfaces (api/, admin/) share a layer and must not import each other; what both
// need lives in http/ or below. app.ts, main.ts and the other entry files wire everything.
const LAYERS = [
  {
    name: 'base',
    dirs: [],
    files: ['ids.ts', 'errors.ts', 'wire.ts', 'config.ts', 'log.ts', 'metrics.ts', 'version.ts']
  },
  { name: 'db', dirs: ['db'] },
  { name: 'store', dirs: ['store'] },
  { name: 'auth', dirs: ['auth'] },
  { name: 'broker', dirs: ['broker'] },
  { name: 'delivery', dirs: ['delivery', 'webhooks'] },
  { name: 'services', dirs: ['services'] },
  { name: 'http', dirs: ['http'] },
  { name: 'surfaces', dirs: ['api', 'admin'], apart: true }
]

/** `../x/…` or `./x/…` (from server/ itself): a relative import of folder x under server/. */
const importOf = dirs => `^\\.\\.?/(?:\\.\\./)*(?:${dirs.join('|')})/`

function layerRules () {
  const configs = []
  LAYERS.forEach((layer, i) => {
    const above = LAYERS.slice(i + 1).flatMap(l => l.dirs)
    const files = layer.dirs.length > 0
      ? layer.dirs.map(d => `server/${d}/**/*.ts`)
      : layer.files.map(f => `server/${f}`)
    for (const file of files) {
      const own = layer.dirs.find(d => file.startsWith(`server/${d}/`))
      const forbidden = layer.apart ? [...above, ...layer.dirs.filter(d => d !== own)] : above
      if (forbidden.length === 0) continue
      configs.push({
        files: [file],
        rules: {
          'no-restricted-imports': ['error', {
            patterns: [{
              regex: importOf(forbidden),
              message: `server layers import only downward: ${own ?? layer.name} may not import ` +
                `${forbidden.join(', ')} (see eslint.config.js LAYERS)`
            }]
          }]
        }
      })
    }
  })
  return configs
}

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', '.data/**', 'bench/.build/**', 'sdk/*/dist/**']
  }),
  {
    rules: {
      '@stylistic/max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      // `void promise` as a statement marks a promise deliberately not awaited (its function
      // handles its own errors), as TypeScript code does; `void` inside an expression stays an error
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  ...layerRules(),
  {
    // the device SDK runs in browsers and React Native too: nothing of Node's on its path
    files: ['sdk/js/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^node:', message: 'the SDK runs in browsers and React Native: no Node built-ins' }]
      }],
      'no-restricted-globals': ['error',
        ...['Buffer', 'process', 'require', '__dirname', 'setImmediate'].map(name => ({
          name, message: 'the SDK runs in browsers and React Native: no Node globals'
        }))]
    }
  }
]
