// The home page, /: the documents the server knows, and a form to open or create one by name.
// Names only ever reach the page through textContent and percent-encoded hrefs.
import { documentNameProblem, documentPath } from './protocol.js'
import { registerServiceWorker } from './offline.js'
import { relativeTime } from './format.js'
import { setupSearch } from './home-search.js'
import { setupHomeNotice, setupRowActions } from './home-actions.js'
import { setupImport } from './home-import.js'

// With an access token in the address (`/?token=...`), the list and the links carry it.
const token = new URLSearchParams(window.location.search).get('token')
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path)

const REFRESH_MS = 15000

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`index.html lacks #${id}`)
  return element
}

const absolute = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' })

/** @param {number} n */
const peopleText = (n) => n === 0 ? 'nobody here' : n === 1 ? '1 person here' : `${n} people here`

/**
 * @typedef {{ name: string, title?: string | null, size_bytes?: number, updated_at: number | null, connections?: number }} DocumentInfo
 */

/** @param {DocumentInfo} doc */
const documentItem = (doc) => {
  const li = document.createElement('li')
  li.className = 'doc-item'
  li.dataset.testid = 'doc-item'
  li.dataset.name = doc.name

  const link = document.createElement('a')
  link.className = 'doc-link'
  link.dataset.testid = 'doc-link'
  link.href = withToken(documentPath(doc.name))
  link.textContent = doc.name

  // its first heading, beside the name (null when it has none)
  const title = document.createElement('span')
  title.className = 'doc-item-title'
  title.dataset.testid = 'doc-title'
  if (typeof doc.title === 'string') title.textContent = doc.title

  const meta = document.createElement('span')
  meta.className = 'doc-meta'

  const updated = document.createElement('span')
  updated.className = 'doc-updated'
  updated.dataset.testid = 'doc-updated'
  if (typeof doc.updated_at === 'number' && Number.isFinite(doc.updated_at)) {
    const time = document.createElement('time')
    const date = new Date(doc.updated_at * 1000)
    time.dateTime = date.toISOString()
    time.title = absolute.format(date)
    time.textContent = `edited ${relativeTime(doc.updated_at)}`
    updated.append(time)
  } else {
    updated.textContent = 'not edited yet'
  }

  const connections = Number.isInteger(doc.connections) ? /** @type {number} */ (doc.connections) : 0
  const people = document.createElement('span')
  people.className = 'doc-people'
  people.dataset.testid = 'doc-connections'
  people.dataset.count = String(connections)
  if (connections > 0) people.classList.add('doc-people-live')
  people.textContent = peopleText(connections)

  meta.append(updated, people)
  li.append(link, title, meta)
  const actions = rowActions.forRow(doc.name) // Duplicate, Delete (home-actions.js)
  if (actions) li.append(actions)
  return li
}

const list = $('doc-list')
const message = $('list-message')
let loading = false
// asked for while a load was running (after a duplicate, delete or import): load again after it
let again = false
/** @type {string[]} the names the list shows */
let shownNames = []

// What a row holds that can take the keyboard focus (its link, its action buttons).
const FOCUSABLE = 'a[href], button, input, [tabindex]'

/** Which control of which row has the focus, so that a re-render can give it back. */
const focusedControl = () => {
  const active = document.activeElement
  if (!(active instanceof HTMLElement) || !list.contains(active)) return null
  const item = active.closest('li.doc-item')
  if (!(item instanceof HTMLElement)) return null
  const index = [...item.querySelectorAll(FOCUSABLE)].indexOf(active)
  return index < 0 ? null : { name: item.dataset.name ?? '', index }
}

/** @param {{ name: string, index: number } | null} spot */
const restoreFocus = (spot) => {
  if (spot === null) return
  const item = [...list.children].find((li) => li instanceof HTMLElement && li.dataset.name === spot.name)
  const control = item?.querySelectorAll(FOCUSABLE)[spot.index]
  if (control instanceof HTMLElement) control.focus({ preventScroll: true })
}

const loadDocuments = async () => {
  if (loading) {
    again = true
    return
  }
  loading = true
  try {
    const headers = { Accept: 'application/json' }
    if (token) headers.Authorization = `Bearer ${token}`
    const response = await fetch('/api/docs', { headers, cache: 'no-store' })
    if (response.status === 401) throw new Error('this server needs an access token — open the link you were given, which ends in ?token=…')
    if (response.status === 403) throw new Error('your access token does not cover any document list')
    if (!response.ok) throw new Error(`the server answered ${response.status}`)
    const body = await response.json()
    /** @type {DocumentInfo[]} */
    const documents = Array.isArray(body?.documents)
      ? body.documents.filter((/** @type {any} */ d) => d && typeof d.name === 'string')
      : []
    documents.sort((a, b) => (b.updated_at ?? -Infinity) - (a.updated_at ?? -Infinity) || a.name.localeCompare(b.name))
    // The list refreshes every 15 s: whoever is moving through it by keyboard keeps their place.
    const spot = focusedControl()
    list.replaceChildren(...documents.map(documentItem))
    restoreFocus(spot)
    shownNames = documents.map((d) => d.name)
    message.textContent = documents.length === 0 ? 'No documents yet. Open one by name above to create it.' : ''
    message.hidden = documents.length !== 0
    list.setAttribute('aria-busy', 'false')
  } catch (error) {
    message.textContent = `Could not load the documents: ${error instanceof Error ? error.message : String(error)}.`
    message.hidden = false
  } finally {
    loading = false
    if (again) {
      again = false
      loadDocuments()
    }
  }
}

// --- row actions, import (home-actions.js, home-import.js) ------------------------------------
const notice = setupHomeNotice(/** @type {HTMLElement} */ ($('refresh').closest('.list-head')))
const rowActions = setupRowActions({
  token, list, notice, names: () => shownNames, reload: loadDocuments, fallbackFocus: () => $('doc-name')
})
setupImport({
  token, zone: /** @type {HTMLElement} */ (list.closest('section')), place: $('refresh'),
  list, names: () => shownNames, reload: loadDocuments, notice
})

// --- open / create form -----------------------------------------------------------------------
const form = /** @type {HTMLFormElement} */ ($('open-form'))
const input = /** @type {HTMLInputElement} */ ($('doc-name'))
const error = $('doc-name-error')

/** @param {string | null} problem */
const showProblem = (problem) => {
  error.textContent = problem ?? ''
  error.hidden = problem === null
  input.setAttribute('aria-invalid', String(problem !== null))
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const name = input.value.trim()
  const problem = documentNameProblem(name)
  showProblem(problem)
  if (problem !== null) {
    input.focus()
    return
  }
  window.location.assign(withToken(documentPath(name)))
})
input.addEventListener('input', () => {
  // clear a shown error as soon as the name becomes valid
  if (!error.hidden && documentNameProblem(input.value.trim()) === null) showProblem(null)
})

$('refresh').addEventListener('click', () => { loadDocuments() })
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') loadDocuments()
})
window.setInterval(() => {
  if (document.visibilityState === 'visible') loadDocuments()
}, REFRESH_MS)

setupSearch({ token, withToken })

list.setAttribute('aria-busy', 'true')
message.textContent = 'Loading…'
loadDocuments()
registerServiceWorker()
