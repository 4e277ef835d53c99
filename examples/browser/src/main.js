// The page: every check, drawing and run below is the engine's (@tasker/wasm); this file only wires the DOM.
import mermaid from 'mermaid'
import { Engine, RetryableError, renderDefinition, validateTemplate } from '@tasker/wasm'
import demo from './demo.yaml?raw'

mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'neutral' })

const $ = (selector) => document.querySelector(selector)
const editor = $('#template')
const problems = $('#problems')
const dag = $('#dag')
const runButton = $('#run')
const rows = $('#steps tbody')
const taskState = $('#task-state')
const explainOut = $('#explain')

const item = (text) => Object.assign(document.createElement('li'), { textContent: text })
let drawing = 0

/** Checks the text as registration would and draws it when it is valid. */
async function check() {
  const text = editor.value
  const found = validateTemplate(text)
  problems.replaceChildren(
    ...found.map((p) => item(p.cycle ? `cycle detected: ${p.cycle.join(' → ')}` : `${p.path || '(template)'}: ${p.message}`)),
  )
  problems.dataset.count = String(found.length)
  runButton.disabled = found.length > 0
  const mine = ++drawing
  if (found.length > 0) {
    dag.replaceChildren()
    return
  }
  const { svg } = await mermaid.render(`dag-${mine}`, renderDefinition(text, 'mermaid'))
  if (mine === drawing) dag.innerHTML = svg
}

function showSteps(steps) {
  rows.replaceChildren(
    ...steps.map((s) => {
      const tr = document.createElement('tr')
      tr.dataset.step = s.name
      for (const cls of ['name', 'state', 'attempts', 'error']) tr.append(Object.assign(document.createElement('td'), { className: cls }))
      rows.append(tr)
      update(tr, s)
      return tr
    }),
  )
}

function update(tr, step) {
  tr.dataset.state = step.state
  tr.querySelector('.name').textContent = step.name
  tr.querySelector('.state').textContent = step.state
  tr.querySelector('.attempts').textContent = String(step.attempts)
  if (step.error) tr.querySelector('.error').textContent = `${step.error.errorClass}: ${step.error.message}`
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Demo work: a short wait, and the first attempt of every other step fails transiently. */
async function demoHandler(ctx) {
  await sleep(150 + Math.random() * 250)
  if (ctx.attempt === 1 && ctx.stepName.length % 2 === 1) throw new RetryableError(`${ctx.stepName}: the demo service is busy`)
  return { step: ctx.stepName, attempt: ctx.attempt, parents: Object.keys(ctx.dependencyResults) }
}

async function run() {
  runButton.disabled = true
  explainOut.textContent = ''
  const engine = await Engine.memory()
  try {
    const { template } = await engine.registerTemplate(editor.value)
    const task = await engine.createTask(template.namespace, template.name)
    taskState.textContent = task.state
    showSteps(await engine.steps(task.id))
    const events = engine.subscribe({ taskId: task.id })
    const live = (async () => {
      for await (const e of events) {
        if (e.stepName === null) taskState.textContent = e.toState
        else {
          const tr = rows.querySelector(`tr[data-step="${CSS.escape(e.stepName)}"]`)
          if (tr) update(tr, { name: e.stepName, state: e.toState, attempts: e.attempt ?? 0 })
        }
      }
    })()
    const handlers = Object.fromEntries(template.steps.map((s) => [s.handlerKey, demoHandler]))
    await engine.runUntilIdle(handlers, { concurrency: 4 })
    events.close()
    await live
    // The engine's record, after the live view: the same states, with each step's last error.
    for (const s of await engine.steps(task.id)) update(rows.querySelector(`tr[data-step="${CSS.escape(s.name)}"]`), s)
    taskState.textContent = (await engine.task(task.id)).state
    explainOut.textContent = JSON.stringify(await engine.explain(task.id), null, 2)
  } catch (e) {
    taskState.textContent = `failed: ${e.message}`
  } finally {
    await engine.close()
    runButton.disabled = false
  }
}

editor.value = demo
let timer
editor.addEventListener('input', () => {
  clearTimeout(timer)
  timer = setTimeout(check, 150)
})
runButton.addEventListener('click', run)
await check()
$('#status').textContent = 'engine ready'
$('#status').dataset.state = 'ready'
