// Every code block of the README runs here. TypeScript and Python blocks
// run in order, as a reader would run them, each in a fresh process, and
// what they print must match the `// ...` comments after their console.log
// calls. TypeScript blocks also type-check under --strict. Shell blocks
// may hold only the commands this suite or .ci/run carry out (the Deno one
// through scripts/deno-smoke.sh); the demo's
// and example's run here, and the demo's output must have the shape of the
// README's text block.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { SharedMemory } from 'posix-shm'
import { ROOT, runScript } from './helpers'

interface Block {
  language: string
  code: string
  line: number
}

function readmeBlocks(): Block[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const blocks: Block[] = []
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm
  for (let match = fence.exec(text); match; match = fence.exec(text)) {
    blocks.push({ language: match[1], code: match[2], line: text.slice(0, match.index).split('\n').length })
  }
  return blocks
}

/** The output a block promises: the comment after each console.log, in order. */
function expectedOutput(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\)\s*\/\/\s*(.*)$/gm)].map((m) => m[1].trim())
}

/** A table with its numbers taken out, to compare shapes. */
function shape(text: string): string[] {
  return text
    .trim()
    .split('\n')
    .map((line) => line.replace(/\d+(\.\d+)?/g, 'N').replace(/\s+/g, ' ').trim())
}

const blocks = readmeBlocks()
/** The comment that marks a block needing `shared: true`. */
const NEEDS_SHARED_BUFFERS = '// Needs Node.js 22.23.3+, 24.16+, 26.1+ or Bun.'

const RUNNABLE = new Set(['ts', 'python'])

test('the README has code blocks, each of a kind this suite runs or checks', (t) => {
  t.true(blocks.filter((b) => b.language === 'ts').length >= 8)
  for (const block of blocks) t.true(['ts', 'python', 'sh', 'text'].includes(block.language), `line ${block.line}: ${block.language}`)
})

test.serial('every TypeScript and Python block runs, in order, and prints what its comments say', async (t) => {
  const dir = join(ROOT, '.readme-run')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const block of blocks.filter((b) => RUNNABLE.has(b.language))) {
    // A block marked as needing shared buffers runs where the runtime has
    // them (the Node 22, 24 and 26 runs of this suite); elsewhere it is
    // only type-checked (below), and says so.
    if (block.code.includes(NEEDS_SHARED_BUFFERS) && !SharedMemory.sharedBuffers) {
      t.log(`README line ${block.line} not run: it needs shared buffers, which Node ${process.version} lacks`)
      continue
    }
    let printed: string
    if (block.language === 'python') {
      const file = join(dir, `line-${block.line}.py`)
      writeFileSync(file, block.code)
      printed = execFileSync('python3', [file], { cwd: dir, encoding: 'utf8' })
    } else {
      // Inside the package folder, so `import 'posix-shm'` resolves to this package.
      const file = join(dir, `line-${block.line}.mjs`)
      const { outputText } = ts.transpileModule(block.code, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      })
      writeFileSync(file, outputText)
      const child = await runScript(file, { cwd: dir })
      t.is(child.code, 0, `README line ${block.line}: ${child.stderr}`)
      printed = child.stdout
    }
    const lines = printed.trimEnd().split('\n').filter((l) => l !== '')
    t.deepEqual(lines, expectedOutput(block.code), `README line ${block.line}`)
  }
})

test.serial('every TypeScript block of the README type-checks under --strict against the shipped typings', (t) => {
  const dir = join(ROOT, '.readme-typecheck')
  mkdirSync(dir, { recursive: true })
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const files = blocks
    .filter((b) => b.language === 'ts')
    .map((block) => {
      const file = join(dir, `line-${block.line}.mts`)
      writeFileSync(file, block.code)
      return file
    })
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    skipLibCheck: true,
  })
  const problems = ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
  t.deepEqual(problems, [])
})

// What each shell command is: run here (a script), or run by .ci/run.
const KNOWN_COMMANDS = new Map<string, string | undefined>([
  ['npm install posix-shm', undefined], // what a user runs once the packages are published
  ['npm install && npm test', undefined], // what .ci/run runs
  ['npm install && npm run demo', 'examples/demo.mjs'],
  ['npm run example', 'examples/ten-ints.mjs'],
  // what scripts/deno-smoke.sh (.ci/run) runs in a project with the tarballs installed
  ['deno run --allow-ffi --allow-env --allow-read=/usr/bin/ldd --allow-run ten-ints.mjs', undefined],
])

test('the README\'s Deno command is the one scripts/deno-smoke.sh runs from an install', (t) => {
  const smoke = readFileSync(join(ROOT, 'scripts', 'deno-smoke.sh'), 'utf8')
  const commands = blocks.flatMap((b) => (b.language === 'sh' ? b.code.trim().split('\n') : [])).filter((c) => c.startsWith('deno '))
  t.true(commands.length > 0)
  for (const command of commands) {
    const [, flags, script] = /^deno run ((?:--\S+ )+)(\S+)$/.exec(command) ?? []
    t.true(smoke.includes(`installed=(${flags.trim()})`), command)
    t.true(smoke.includes(`run "\${installed[@]}" ${script}`), command)
  }
})

test.serial('every shell block holds a command this project runs, and the demo and example run end to end', async (t) => {
  const demoOutput = blocks.find((b) => b.language === 'text')
  t.truthy(demoOutput, 'the README shows the demo output')
  for (const block of blocks.filter((b) => b.language === 'sh')) {
    for (const command of block.code.trim().split('\n')) {
      t.true(KNOWN_COMMANDS.has(command), `README line ${block.line}: ${command}`)
      const script = KNOWN_COMMANDS.get(command)
      if (script === undefined) continue
      const child = await runScript(join(ROOT, script))
      t.is(child.code, 0, child.stderr)
      if (script.endsWith('demo.mjs')) {
        t.deepEqual(shape(child.stdout), shape(demoOutput!.code))
      } else {
        t.regex(child.stdout, /reader \(pid \d+\) sees: 0 10 20 30 40 50 60 70 80 90/)
      }
    }
  }
})
