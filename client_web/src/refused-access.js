// What the editor does once the server refuses its token: close code 4401 (no token, a bad one,
// or an expired one: the server also closes a connected socket with it when its token's `exp`
// comes) or 4403 (a token for other documents). Both are final: y-websocket stops reconnecting,
// and so does connection.js on the browser's "online" event.
//
// The page turns read-only for good (read-only.js), the banner says why in words (expired, not
// valid, missing, no access), and the `access-refused` panel takes a new link: an editor address
// with ?token=, or the token alone. It is checked here first (it must be readable, for this
// document, not expired already, not the refused one), then the page reloads with it. What was
// typed before the refusal stays in the IndexedDB copy and in the document's list of unsaved edits
// (pending-edits.js), and is sent once a token the server accepts connects.
import { CLOSE_CODE, documentNameFromPath } from './protocol.js'
import { tokenPayload } from './access.js'

/** @typedef {'expired' | 'missing' | 'invalid' | 'forbidden'} RefusalKind */

/** The banner's sentence for each kind of refusal. */
export const REFUSED_TEXT = Object.freeze({
  expired: 'Your link has expired. This page can no longer save changes or receive them: paste a new link to go on.',
  missing: 'This document needs a link with an access token. Paste one to open it.',
  invalid: 'This link is not valid on this server (its token is damaged, or from another server). Paste a new link to go on.',
  forbidden: 'This link does not give access to this document: you are not allowed to open it. Paste a link for this document to go on.'
})

/** The panel's heading for each kind. */
export const REFUSED_HEADING = Object.freeze({
  expired: 'Link expired',
  missing: 'Access link needed',
  invalid: 'Link not valid',
  forbidden: 'No access to this document'
})

export const KEPT_NOTE = 'What was written on this page is kept on this device. It is not saved on the server ' +
  'until a link that gives access opens the page; then it is sent.'

/**
 * Which refusal a final close is, or null when it is not about the token (4404, 4410, ...).
 *
 * @param {{ code: number, reason: string }} refusal
 * @param {string | null} token the page's
 * @param {number} [now] ms since the epoch
 * @return {RefusalKind | null}
 */
export const refusalKind = ({ code, reason }, token, now = Date.now()) => {
  if (code === CLOSE_CODE.forbidden) return 'forbidden'
  if (code !== CLOSE_CODE.unauthorized) return null
  if (!token) return 'missing'
  if (/expired/i.test(reason)) return 'expired'
  const exp = tokenPayload(token)?.exp
  if (typeof exp === 'number' && exp * 1000 <= now) return 'expired'
  return /required/i.test(reason) ? 'missing' : 'invalid'
}

/** A JWT: three base64url parts. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Whether a token's `doc` covers `name` (the server's rule, server/auth.py Grant.covers).
 *
 * @param {string} scope a name, a prefix ending in '/', or '*'
 * @param {string} name
 */
export const scopeCovers = (scope, name) =>
  scope === '*' || (scope.endsWith('/') ? name.startsWith(scope) : name === scope)

/** @param {string} text @param {number} [max] */
const shown = (text, max = 80) => (text.length > max ? `${text.slice(0, max)}…` : text)

/**
 * The token of a pasted link or token, or why it cannot open this document.
 *
 * @param {string} input what was pasted
 * @param {object} opts
 * @param {string} opts.name this page's document
 * @param {string} opts.base the page's address (for a link without its origin)
 * @param {string | null} [opts.current] the refused token
 * @param {number} [opts.now] ms since the epoch
 * @return {{ token: string } | { problem: string }}
 */
export const parseNewLink = (input, { name, base, current = null, now = Date.now() }) => {
  const text = input.trim()
  if (!text) return { problem: 'Paste a link, or its token, first.' }
  let token = text
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) || text.startsWith('/')) {
    let url
    try {
      url = new URL(text, base)
    } catch {
      return { problem: 'This is not a link that can be read.' }
    }
    const linked = documentNameFromPath(url.pathname)
    if (linked === null) return { problem: 'This link does not open a document (its address has no /d/…).' }
    if (linked !== name) return { problem: `This link is for another document ("${shown(linked)}"), not this one.` }
    token = url.searchParams.get('token') ?? ''
    if (!token) return { problem: 'This link has no token in it (no ?token=…): it gives no access.' }
  } else if (/^\??token=/.test(text)) {
    token = text.slice(text.indexOf('=') + 1)
  }
  if (!TOKEN_PATTERN.test(token)) return { problem: 'This is neither a link nor a token.' }
  const payload = tokenPayload(token)
  if (payload === null) return { problem: 'This token cannot be read: it may be cut short. Copy the whole link again.' }
  const scope = payload.doc
  if (typeof scope !== 'string' || !scope) return { problem: 'This token names no document.' }
  if (!scopeCovers(scope, name)) {
    return {
      problem: scope.endsWith('/')
        ? `This link is for the documents under "${shown(scope)}", not this one.`
        : `This link is for another document ("${shown(scope)}"), not this one.`
    }
  }
  if (typeof payload.exp === 'number' && payload.exp * 1000 <= now) return { problem: 'This link has expired too. Ask for a new one.' }
  if (token === current) return { problem: 'This is the link the server just refused.' }
  return { token }
}

/**
 * The page's address with `token` as its ?token=.
 *
 * @param {string} href
 * @param {string} token
 */
export const withToken = (href, token) => {
  const url = new URL(href)
  url.searchParams.set('token', token)
  return url.toString()
}

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`editor.html lacks #${id}`)
  return element
}

/**
 * @param {object} opts
 * @param {string} opts.name the document
 * @param {string | null} opts.token the page's
 * @param {{ refuse: (kind: RefusalKind) => void }} opts.readOnly
 * @param {() => Promise<unknown>} opts.flush until this device's copy and unsaved list are stored
 * @param {() => void} opts.onChange
 * @param {(url: string) => void} [opts.navigate]
 * @return {{ refuse: (refusal: { code: number, reason: string }) => void, kind: () => RefusalKind | null }}
 */
export const setupRefusedAccess = ({ name, token, readOnly, flush, onChange, navigate = (url) => window.location.assign(url) }) => {
  const panel = $('access-refused')
  const heading = $('refused-heading')
  const note = $('refused-note')
  const form = /** @type {HTMLFormElement} */ ($('refused-form'))
  const input = /** @type {HTMLInputElement} */ ($('refused-link'))
  const submit = /** @type {HTMLButtonElement} */ ($('refused-use'))
  const errorElement = $('refused-error')
  /** @type {RefusalKind | null} */
  let kind = null

  /** @param {string} [text] */
  const showError = (text) => {
    errorElement.textContent = text ?? ''
    errorElement.hidden = !text
    if (text) input.setAttribute('aria-invalid', 'true')
    else input.removeAttribute('aria-invalid')
  }

  input.addEventListener('input', () => showError())
  let opening = false
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    if (opening) return
    const parsed = parseNewLink(input.value, { name, base: window.location.href, current: token })
    if ('problem' in parsed) {
      showError(parsed.problem)
      input.focus()
      return
    }
    showError()
    opening = true
    submit.disabled = true
    submit.setAttribute('aria-busy', 'true')
    try {
      await flush()
    } catch (error) {
      // the copy is written as it goes: what is not flushed now was written before the refusal
      console.info(`Tandem: could not wait for the local copy (${error instanceof Error ? error.message : String(error)})`)
    }
    navigate(withToken(window.location.href, parsed.token))
  })

  return {
    kind: () => kind,
    refuse (refusal) {
      if (kind !== null) return
      kind = refusalKind(refusal, token)
      if (kind === null) return
      console.info(`Tandem: the server refused this page's link (code ${refusal.code}${refusal.reason ? `: ${refusal.reason}` : ''})`)
      readOnly.refuse(kind)
      heading.textContent = REFUSED_HEADING[kind]
      note.textContent = KEPT_NOTE
      panel.hidden = false
      onChange()
    }
  }
}
