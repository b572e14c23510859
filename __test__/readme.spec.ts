// Every code block of the README runs here. TypeScript blocks run as they
// are, in a fresh process, and what they print must match the `// ...`
// comments after their console.log calls. Shell blocks may hold only the
// commands this suite or .ci/run carry out.

import test from 'ava'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { ROOT, runNode } from './helpers'

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

const blocks = readmeBlocks()

test('the README has code blocks, and each is TypeScript or shell', (t) => {
  t.true(blocks.filter((b) => b.language === 'ts').length >= 5)
  for (const block of blocks) t.true(['ts', 'sh'].includes(block.language), `line ${block.line}: ${block.language}`)
})

test.serial('every TypeScript block of the README runs and prints what its comments say', async (t) => {
  const dir = join(ROOT, '.readme-run')
  mkdirSync(dir, { recursive: true })
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const block of blocks.filter((b) => b.language === 'ts')) {
    // Inside the package folder, so `import 'posix-shm'` resolves to this package.
    const file = join(dir, `line-${block.line}.mjs`)
    const { outputText } = ts.transpileModule(block.code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    })
    writeFileSync(file, outputText)
    const child = await runNode(`import(${JSON.stringify(`file://${file}`)})`)
    t.is(child.code, 0, `README line ${block.line}: ${child.stderr}`)
    const printed = child.stdout.trimEnd().split('\n').filter((l) => l !== '')
    t.deepEqual(printed, expectedOutput(block.code), `README line ${block.line}`)
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

const KNOWN_COMMANDS = new Map<string, string | undefined>([
  ['npm install posix-shm', undefined], // what a user runs; .ci/run's pack-and-install step covers it
  ['npm install && npm test', undefined], // what .ci/run runs
  ['npm run example', 'examples/ten-ints.mjs'],
])

test.serial('every shell block holds a command this project runs, and the example runs end to end', async (t) => {
  for (const block of blocks.filter((b) => b.language === 'sh')) {
    for (const command of block.code.trim().split('\n')) {
      t.true(KNOWN_COMMANDS.has(command), `README line ${block.line}: ${command}`)
      const script = KNOWN_COMMANDS.get(command)
      if (script === undefined) continue
      const child = await runNode(`import(${JSON.stringify(`file://${join(ROOT, script)}`)})`)
      t.is(child.code, 0, child.stderr)
      t.regex(child.stdout, /reader \(pid \d+\) sees: 0 10 20 30 40 50 60 70 80 90/)
    }
  }
})
