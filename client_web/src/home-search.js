// The home page's search box: GET /api/search as you type (debounced), each result a link to
// its document (carrying the page's ?token=), with its title and a snippet whose hits are
// <mark>s. Everything from the server reaches the page through textContent: the snippet comes
// as parts ({text, hit}), never as HTML.
//
// Keys: typing searches, Enter searches at once, Escape clears; ArrowDown goes from the box to
// the results, ArrowUp/ArrowDown move between them, Escape goes back to the box.
import { documentPath } from './protocol.js'

export const SEARCH_DELAY_MS = 250
// The server's longest query (server/search_api.py).
export const MAX_QUERY = 200

/**
 * @typedef {{ text: string, hit: boolean }} SnippetPart
 * @typedef {{ name: string, title: string | null, snippet: SnippetPart[] }} SearchResult
 */

/**
 * The snippet as DOM: plain text, each hit in a <mark>.
 *
 * @param {unknown} parts
 * @return {Node[]}
 */
export const snippetNodes = (parts) => {
  if (!Array.isArray(parts)) return []
  return parts
    .filter((part) => part && typeof part.text === 'string')
    .map((part) => {
      if (part.hit !== true) return document.createTextNode(part.text)
      const mark = document.createElement('mark')
      mark.textContent = part.text
      return mark
    })
}

/**
 * @param {SearchResult} result
 * @param {(path: string) => string} withToken
 * @return {HTMLLIElement}
 */
const resultItem = (result, withToken) => {
  const li = document.createElement('li')
  li.className = 'search-result'
  li.dataset.testid = 'search-result'
  li.dataset.name = result.name

  const head = document.createElement('div')
  head.className = 'search-result-head'
  const link = document.createElement('a')
  link.className = 'doc-link'
  link.dataset.testid = 'search-result-link'
  link.href = withToken(documentPath(result.name))
  link.textContent = result.name
  head.append(link)
  if (typeof result.title === 'string' && result.title) {
    const title = document.createElement('span')
    title.className = 'doc-item-title'
    title.dataset.testid = 'search-result-title'
    title.textContent = result.title
    head.append(title)
  }

  const snippet = document.createElement('p')
  snippet.className = 'search-snippet'
  snippet.dataset.testid = 'search-snippet'
  snippet.append(...snippetNodes(result.snippet))
  li.append(head, snippet)
  return li
}

/** @param {number} n */
const matchText = (n) => n === 1 ? '1 document matches' : `${n} documents match`

/**
 * @param {Response} response
 * @return {Promise<string>}
 */
const failure = async (response) => {
  let said = ''
  try {
    const body = await response.json()
    if (body && typeof body.error === 'string') said = body.error
  } catch {
    // not JSON: the status says enough
  }
  switch (response.status) {
    case 401: return 'this server needs an access token — open the link you were given, which ends in ?token=…'
    case 403: return 'your access token does not allow searching'
    case 400: return said || 'the server did not accept this search'
    default: return `the server answered ${response.status}${said ? ` (${said})` : ''}`
  }
}

/**
 * Wire the search form of index.html.
 *
 * @param {{ token: string | null, withToken: (path: string) => string }} options
 */
export const setupSearch = ({ token, withToken }) => {
  const form = /** @type {HTMLFormElement | null} */ (document.getElementById('search-form'))
  const input = /** @type {HTMLInputElement | null} */ (document.getElementById('search-input'))
  const status = document.getElementById('search-status')
  const results = document.getElementById('search-results')
  if (!form || !input || !status || !results) throw new Error('index.html lacks the search form')

  /** @type {number | undefined} */
  let timer
  /** @type {AbortController | null} */
  let running = null
  let asked = ''

  /** @param {string} text */
  const say = (text) => { status.textContent = text }

  const clear = () => {
    running?.abort()
    running = null
    asked = ''
    results.replaceChildren()
    results.setAttribute('aria-busy', 'false')
    say('')
  }

  /** @param {string} query */
  const search = async (query) => {
    window.clearTimeout(timer)
    if (query === '') {
      clear()
      return
    }
    if (query === asked) return
    running?.abort()
    const controller = new AbortController()
    running = controller
    asked = query
    results.setAttribute('aria-busy', 'true')
    try {
      /** @type {Record<string, string>} */
      const headers = { Accept: 'application/json' }
      if (token) headers.Authorization = `Bearer ${token}`
      const url = `/api/search?${new URLSearchParams({ q: query })}`
      const response = await fetch(url, { headers, cache: 'no-store', signal: controller.signal })
      if (!response.ok) throw new Error(await failure(response))
      const body = await response.json()
      if (running !== controller) return // a newer search is on its way
      /** @type {SearchResult[]} */
      const found = Array.isArray(body?.results)
        ? body.results.filter((/** @type {any} */ r) => r && typeof r.name === 'string')
        : []
      results.replaceChildren(...found.map((result) => resultItem(result, withToken)))
      say(found.length === 0
        ? 'No documents match. What was typed in the last few seconds may not be found yet.'
        : matchText(found.length))
    } catch (error) {
      if (controller.signal.aborted) return
      asked = '' // the same words may be tried again
      results.replaceChildren()
      say(`Could not search: ${error instanceof Error ? error.message : String(error)}.`)
    } finally {
      if (running === controller) {
        running = null
        results.setAttribute('aria-busy', 'false')
      }
    }
  }

  const links = () => /** @type {HTMLAnchorElement[]} */ ([...results.querySelectorAll('a.doc-link')])

  input.addEventListener('input', () => {
    window.clearTimeout(timer)
    const query = input.value.trim()
    if (query === '') {
      clear()
      return
    }
    timer = window.setTimeout(() => { search(query) }, SEARCH_DELAY_MS)
  })
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    asked = '' // Enter asks again, even for the same words (the index may have caught up)
    search(input.value.trim())
  })
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && input.value !== '') {
      event.preventDefault()
      input.value = ''
      clear()
    } else if (event.key === 'ArrowDown' && links().length > 0) {
      event.preventDefault()
      links()[0].focus()
    }
  })
  results.addEventListener('keydown', (event) => {
    const all = links()
    const at = all.indexOf(/** @type {HTMLAnchorElement} */ (document.activeElement))
    if (at < 0) return
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      const next = at + (event.key === 'ArrowDown' ? 1 : -1)
      if (next < 0) input.focus()
      else all[Math.min(next, all.length - 1)].focus()
    } else if (event.key === 'Escape') {
      event.preventDefault()
      input.focus()
    }
  })
  input.maxLength = MAX_QUERY
}
