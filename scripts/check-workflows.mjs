// Parses every GitHub workflow and checks what a typo would break before
// GitHub ever runs it: valid YAML, a trigger, jobs that either run steps
// on a runner or call a workflow file that exists, and `needs` that name
// jobs of the same workflow.

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'

const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '.github', 'workflows')
const problems = []
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
let jobCount = 0
for (const file of files) {
  let workflow
  try {
    workflow = parse(readFileSync(join(dir, file), 'utf8'), { strict: true, uniqueKeys: true })
  } catch (error) {
    problems.push(`${file}: not valid YAML: ${error.message}`)
    continue
  }
  const where = (what) => `${file}: ${what}`
  if (!workflow || typeof workflow !== 'object') {
    problems.push(where('empty'))
    continue
  }
  if (!('on' in workflow)) problems.push(where('no "on" trigger'))
  if (!workflow.jobs || typeof workflow.jobs !== 'object') {
    problems.push(where('no jobs'))
    continue
  }
  for (const [name, job] of Object.entries(workflow.jobs)) {
    jobCount++
    if (typeof job.uses === 'string') {
      const local = job.uses.match(/^\.\/\.github\/workflows\/(.+)$/)
      if (local && !existsSync(join(dir, local[1]))) problems.push(where(`job ${name} calls missing ${job.uses}`))
    } else {
      if (!job['runs-on']) problems.push(where(`job ${name} has no runs-on`))
      if (!Array.isArray(job.steps) || job.steps.length === 0) problems.push(where(`job ${name} has no steps`))
      for (const [i, step] of (job.steps ?? []).entries()) {
        if (!step.uses && !step.run) problems.push(where(`job ${name} step ${i + 1} neither uses nor runs anything`))
      }
    }
    for (const need of [job.needs ?? []].flat()) {
      if (!(need in workflow.jobs)) problems.push(where(`job ${name} needs unknown job ${need}`))
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'))
  process.exit(1)
}
console.log(`workflows: ${files.length} files, ${jobCount} jobs, all parse and hang together`)
