// The layering ARCHITECTURE.md states, checked on the sources: the Rust
// core imports nothing from napi or the boundary, and no two files of
// src/ import each other, directly or round a longer circle.

import test from 'ava'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ROOT } from './helpers'

const SRC = join(ROOT, 'src')

function rustFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) return rustFiles(path)
    return path.endsWith('.rs') ? [path] : []
  })
}

/** The code of a file without its comments and its `#[cfg(test)]` module. */
function code(path: string): string {
  const text = readFileSync(path, 'utf8')
  const tests = text.indexOf('#[cfg(test)]\nmod tests')
  return (tests < 0 ? text : text.slice(0, tests)).replace(/\/\/.*$/gm, '')
}

/** The file of a module path inside src/ ('core/wait' -> src/core/wait/mod.rs). */
function fileOf(modulePath: string): string | undefined {
  for (const candidate of [`${modulePath}.rs`, `${modulePath}/mod.rs`]) {
    try {
      if (statSync(join(SRC, candidate)).isFile()) return candidate
    } catch {}
  }
  return undefined
}

/** The module path of a file ('core/wait/mod.rs' -> 'core/wait'). */
function moduleOf(file: string): string {
  return file.replace(/(\/mod)?\.rs$/, '')
}

/** Each `a::b::{c, d::e}` expanded to the module-path heads 'a/b/c', 'a/b/d/e'. */
function expand(prefix: string, rest: string): string[] {
  const open = rest.indexOf('{')
  if (open < 0) return [`${prefix}${rest}`]
  const head = rest.slice(0, open)
  const inner = rest.slice(open + 1, rest.lastIndexOf('}'))
  const items: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i]
    if (c === '{') depth++
    else if (c === '}') depth--
    else if ((c === ',' || c === undefined) && depth === 0) {
      const item = inner.slice(start, i).trim()
      if (item) items.push(item)
      start = i + 1
    }
  }
  return items.flatMap((item) => (item === 'self' ? [`${prefix}${head.replace(/::$/, '')}`] : expand(`${prefix}${head}`, item)))
}

/** The files of src/ that `file` refers to through `crate::` and `super::` paths. */
function importsOf(file: string): Set<string> {
  const text = code(join(SRC, file))
  const here = moduleOf(file)
  const parent = file.endsWith('/mod.rs') ? here.split('/').slice(0, -1).join('/') : here.split('/').slice(0, -1).join('/')
  const found = new Set<string>()
  const paths = text.match(/\b(crate|super)::(\{[^;]*?\}|[A-Za-z_]\w*(::[A-Za-z_]\w*)*(::\{[^;]*?\})?)/g) ?? []
  for (const path of paths) {
    const [root, ...restParts] = path.split('::')
    const base = root === 'crate' ? '' : `${parent}/`
    for (const expanded of expand(base, restParts.join('::'))) {
      // The longest prefix that names a file is the module referred to.
      const parts = expanded.split('::').join('/').split('/').filter(Boolean)
      for (let n = parts.length; n > 0; n--) {
        const target = fileOf(parts.slice(0, n).join('/'))
        if (target !== undefined) {
          if (target !== file) found.add(target)
          break
        }
      }
    }
  }
  return found
}

const files = rustFiles(SRC).map((path) => relative(SRC, path))
const graph = new Map(files.map((file) => [file, importsOf(file)]))

test('the graph sees the imports it should (a check on the checker)', (t) => {
  t.true(graph.get('node/entries.rs')?.has('node/convert.rs'))
  t.true(graph.get('node/entries.rs')?.has('core/owner.rs'))
  t.true(graph.get('core/wait/linux.rs')?.has('core/wait/outcome.rs'))
  t.true(graph.get('core/word.rs')?.has('core/wait/slot.rs'))
})

test('the core imports nothing from napi or from the boundary', (t) => {
  for (const file of files.filter((f) => f.startsWith('core/'))) {
    const text = code(join(SRC, file))
    t.false(/\bnapi/.test(text), `${file} mentions napi`)
    t.false([...graph.get(file)!].some((target) => target.startsWith('node/')), `${file} imports the boundary`)
  }
})

test('no file of src/ imports itself back, round any circle', (t) => {
  const circles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' -> '))
      return
    }
    state.set(file, 'open')
    for (const target of graph.get(file) ?? []) visit(target, [...path, file])
    state.set(file, 'done')
  }
  for (const file of files) visit(file, [])
  t.deepEqual(circles, [])
})
