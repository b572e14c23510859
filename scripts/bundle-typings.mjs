// Writes index.d.ts, the package's public typings, from the facade: one
// file bundled by dts-bundle-generator from lib/index.ts and what it
// reaches (the native ShmStats inlined), so that it is what the facade
// exports and nothing else. `npm run build:ts` runs this; index.d.ts is
// committed, and CI fails if a build changes it (.ci/run), as does
// __test__/typings.spec.ts.
//
// The typings are self-contained: they name no module of Node and do not
// reference @types/node, which posix-shm does not install (a runtime
// package should not put 2 MB of typings into every user's tree, nor a
// second copy of @types/node beside the user's own). Buffer and
// AbortSignal come from the consumer's environment when it declares them
// (lib/host-types.ts). This script refuses output that would need more.
//
// Usage: node scripts/bundle-typings.mjs [--out FILE]   (default: index.d.ts)

import { writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateDtsBundle } from 'dts-bundle-generator'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outIndex = process.argv.indexOf('--out')
const out = outIndex === -1 ? join(root, 'index.d.ts') : resolve(process.argv[outIndex + 1])

const [bundle] = generateDtsBundle(
  [{ filePath: join(root, 'lib/index.ts'), output: { exportReferencedTypes: false, noBanner: true } }],
  { preferredConfigPath: join(root, 'tsconfig.json') },
)

// What a consumer's compiler would have to find outside this file.
const needs = [...bundle.matchAll(/^(?:import\b.*|\/\/\/ <reference types=.*)$/gm)].map((match) => match[0])
if (needs.length > 0) {
  console.error(`index.d.ts would need what posix-shm does not ship:\n  ${needs.join('\n  ')}`)
  process.exit(1)
}

const header = `// The public typings of posix-shm, generated from lib/ by
// scripts/bundle-typings.mjs (npm run build:ts). Do not edit: CI fails if a
// build changes this file.

// SharedMemory is Disposable (\`using\`); TypeScript 5.2 and later have this library.
/// <reference lib="esnext.disposable" />

`
writeFileSync(out, header + bundle)
