import { realpathSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The project's own directory, also when a test runs from the test run's compiled tree
 * (test/helpers/compiledTree.ts), whose package.json is a symlink to the project's. For what must
 * read the sources themselves: the web build, a package to pack.
 */
export const PROJECT_ROOT = path.dirname(realpathSync(fileURLToPath(new URL('../../package.json', import.meta.url))))
