// The public typings: index.d.ts is committed, generated from lib/ by
// scripts/bundle-typings.mjs, and must not drift from what the facade
// exports; package.json must point at it and ship it; and it must need
// nothing that posix-shm does not install (no @types/node, no node:*).

import test from 'ava'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, runScript } from './helpers'

const committed = readFileSync(join(ROOT, 'index.d.ts'), 'utf8')

test('index.d.ts is what scripts/bundle-typings.mjs makes from lib/ now (run npm run build:ts and commit it)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'psm-typings-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fresh = join(dir, 'index.d.ts')
  const child = await runScript(join(ROOT, 'scripts/bundle-typings.mjs'), { args: ['--out', fresh] })
  t.is(child.code, 0, child.stderr)
  t.is(readFileSync(fresh, 'utf8'), committed)
})

test('package.json points types at index.d.ts and ships it', (t) => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    types: string
    exports: { '.': { types: string } }
    files: string[]
  }
  t.is(manifest.types, 'index.d.ts')
  t.is(manifest.exports['.'].types, './index.d.ts')
  t.true(manifest.files.includes('index.d.ts'))
})

test('index.d.ts imports nothing and references no @types package', (t) => {
  t.deepEqual(committed.match(/^import\b.*$/gm) ?? [], [])
  t.deepEqual(committed.match(/^\/\/\/ <reference types=.*$/gm) ?? [], [])
  t.notRegex(committed, /['"]node:/)
  t.regex(committed, /export declare class SharedMemory\b/)
  t.regex(committed, /static get zeroCopy\(\): boolean;/)
})
