// The toolbar's Share button and its dialog: links to this document for other people.
//
// What it offers depends on the page's token (its payload is read, never trusted: the server
// decides, README "Access control"):
//   admin   choose a role (read, write, admin), a scope (this document, or its folder when the
//           name has one and the page's token covers it) and an expiry (1 hour … 30 days, never
//           past the page's own token's); "Create link" asks POST /api/tokens with the page's
//           token and shows the new link with a Copy button, or the server's refusal in words;
//   open    no token (open mode): anyone with the address can edit; it offers the address;
//   limited a read or write token: only an admin can make links; it offers the page's own link.
//
// A modal <dialog>: the page behind it is inert, Tab stays inside it, Esc closes it and the focus
// goes back to where it was (or to `fallbackFocus` when that is hidden, e.g. the phone's "⋯").
// Nothing from the server or the document's name is ever parsed as HTML.
import { ApiError } from './api.js'
import { ROLE_RANK, roleOfToken, tokenPayload } from './access.js'
import { copyButton, shareUrl } from './copy-link.js'

/** The expiries offered, shortest first. */
export const EXPIRY_PRESETS = Object.freeze([
  { label: '1 hour', seconds: 3600 },
  { label: '1 day', seconds: 86_400 },
  { label: '7 days', seconds: 7 * 86_400 },
  { label: '30 days', seconds: 30 * 86_400 }
])

/** What each role lets the link's holder do. */
export const ROLE_CHOICES = Object.freeze([
  { value: 'read', label: 'View only (read)' },
  { value: 'write', label: 'Edit (write)' },
  { value: 'admin', label: 'Edit, restore and share (admin)' }
])

/**
 * @param {string | null | undefined} token the page's
 * @return {'open' | 'admin' | 'limited'}
 */
export const shareMode = (token) => {
  const role = roleOfToken(token)
  if (role === 'open') return 'open'
  return role === 'admin' ? 'admin' : 'limited'
}

/**
 * When the page's token expires (Unix seconds), if it says.
 *
 * @param {string | null | undefined} token
 * @return {number | null}
 */
export const tokenExpiry = (token) => {
  const exp = tokenPayload(token)?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : null
}

/**
 * Whether every document `scope` covers is covered by `outer` (server/auth.py's scope_within).
 *
 * @param {string} scope
 * @param {string} outer
 */
export const scopeWithin = (scope, outer) => {
  if (outer === '*') return true
  if (scope === '*') return false
  if (outer.endsWith('/')) return scope.startsWith(outer)
  return scope === outer
}

/**
 * The scopes a link to `name` may have: the document, and its folder (`team/notes` →
 * `team/`) when it has one that the page's token covers.
 *
 * @param {string} name
 * @param {string | null | undefined} token the page's
 * @return {{ value: string, label: string }[]}
 */
export const scopeChoices = (name, token) => {
  const choices = [{ value: name, label: `This document (${name})` }]
  const slash = name.lastIndexOf('/')
  const pageScope = tokenPayload(token)?.doc
  if (slash > 0) {
    const folder = name.slice(0, slash + 1)
    if (typeof pageScope === 'string' && scopeWithin(folder, pageScope)) {
      choices.push({ value: folder, label: `Every document in ${folder}` })
    }
  }
  return choices
}

/**
 * The expiries on offer at `now`: the presets that end before the page's token does, and
 * "until this page's link expires" when that comes sooner than the longest preset.
 *
 * @param {number} now Unix seconds
 * @param {number | null} pageExpiry Unix seconds (null: unknown, every preset)
 * @return {{ label: string, seconds: number }[]} empty when the page's token has expired
 */
export const expiryChoices = (now, pageExpiry) => {
  if (pageExpiry === null) return [...EXPIRY_PRESETS]
  const left = Math.floor(pageExpiry - now)
  if (left < 1) return []
  const fitting = EXPIRY_PRESETS.filter((preset) => preset.seconds <= left)
  const longest = EXPIRY_PRESETS[EXPIRY_PRESETS.length - 1].seconds
  if (left < longest && fitting.at(-1)?.seconds !== left) {
    fitting.push({ label: 'Until this page’s own link expires', seconds: left })
  }
  return fitting
}

/**
 * A readable sentence for a refused or failed POST /api/tokens.
 *
 * @param {number} status 0 when the server could not be reached
 * @param {string} detail the server's `error` text
 * @return {string}
 */
export const shareErrorMessage = (status, detail) => {
  const said = detail ? ` (the server said: ${detail})` : ''
  switch (status) {
    case 0:
      return 'Could not reach the server to create the link. Check the connection and try again.'
    case 401:
      return `This page’s link is not valid any more (expired?), so it cannot create links${said}.`
    case 403:
      return `The server refused to create this link${said}.`
    case 409:
      return detail ? `No link was created: ${detail}.` : 'No link was created: this server has no access tokens.'
    default:
      return `The server did not create the link (${status})${said}.`
  }
}

/**
 * @typedef {{ token: string, url: string, scope: string, role: string, expires_at: number }} Minted
 */

/**
 * POST /api/tokens with the page's token.
 *
 * @param {object} opts
 * @param {string} opts.token the page's (Authorization: Bearer)
 * @param {{ scope: string, role: string, ttl: number, document?: string }} opts.request
 * @param {typeof fetch} [opts.fetch]
 * @return {Promise<Minted>}
 */
export const createLink = async ({ token, request, fetch: fetchImpl = (...args) => fetch(...args) }) => {
  let response
  try {
    response = await fetchImpl('/api/tokens', {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(request),
      cache: 'no-store',
      credentials: 'same-origin'
    })
  } catch {
    throw new ApiError(0, shareErrorMessage(0, ''))
  }
  let body = null
  try {
    body = await response.json()
  } catch {
    body = null
  }
  if (!response.ok) {
    const detail = body && typeof body.error === 'string' ? body.error : ''
    throw new ApiError(response.status, shareErrorMessage(response.status, detail), detail)
  }
  if (!body || typeof body.url !== 'string' || typeof body.token !== 'string' || typeof body.expires_at !== 'number') {
    throw new ApiError(response.status, 'The server’s answer holds no link.')
  }
  return body
}

/** @param {number} seconds Unix */
const shownTime = (seconds) =>
  new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(seconds * 1000))

/**
 * A `<time>` element.
 *
 * @param {number} seconds Unix
 */
const timeElement = (seconds) => {
  const time = document.createElement('time')
  time.dateTime = new Date(seconds * 1000).toISOString()
  time.textContent = shownTime(seconds)
  return time
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 * @return {HTMLElement}
 */
const el = (tag, attributes = {}, children = []) => {
  const element = document.createElement(tag)
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value)
  element.append(...children)
  return element
}

let ids = 0
/** @param {string} base */
const uniqueId = (base) => `${base}-${++ids}`

/**
 * A read-only field holding a link, its label, and a Copy button.
 *
 * @param {object} opts
 * @param {string} opts.label
 * @param {string} opts.testid
 * @param {HTMLElement} opts.dialog the fallback copy's container
 * @return {{ wrap: HTMLElement, input: HTMLInputElement, copy: HTMLButtonElement }}
 */
const linkField = ({ label, testid, dialog }) => {
  const id = uniqueId(testid)
  const input = /** @type {HTMLInputElement} */ (el('input', {
    id, type: 'text', readonly: '', spellcheck: 'false', autocomplete: 'off', 'data-testid': testid
  }))
  input.addEventListener('focus', () => input.select())
  const copy = /** @type {HTMLButtonElement} */ (el('button', {
    class: 'button', type: 'button', 'data-testid': `${testid}-copy`
  }, ['Copy']))
  copyButton(copy, () => input.value, dialog)
  const wrap = el('div', { class: 'share-field' }, [
    el('label', { for: id }, [label]),
    el('div', { class: 'share-link-row' }, [input, copy])
  ])
  return { wrap, input, copy }
}

/**
 * @param {string} label
 * @param {string} testid
 * @param {{ value: string, label: string }[]} options
 * @return {{ wrap: HTMLElement, select: HTMLSelectElement }}
 */
const selectField = (label, testid, options) => {
  const id = uniqueId(testid)
  const select = /** @type {HTMLSelectElement} */ (el('select', { id, 'data-testid': testid }))
  fillSelect(select, options)
  return { wrap: el('div', { class: 'share-field' }, [el('label', { for: id }, [label]), select]), select }
}

/**
 * @param {HTMLSelectElement} select
 * @param {{ value: string, label: string }[]} options
 */
const fillSelect = (select, options) => {
  select.replaceChildren(...options.map(({ value, label }) => {
    const option = document.createElement('option')
    option.value = value
    option.textContent = label
    return option
  }))
}

/** @param {HTMLElement} element */
const isShown = (element) => element.isConnected && element.getClientRects().length > 0

/**
 * @param {object} opts
 * @param {HTMLButtonElement} opts.button the toolbar's Share button
 * @param {string} opts.name the document
 * @param {string | null} opts.token the page's `?token=`
 * @param {string} [opts.origin] the page's
 * @param {() => HTMLElement | null} [opts.fallbackFocus] where the focus goes back to when the
 *   button that opened the dialog is hidden by then
 * @param {typeof fetch} [opts.fetch]
 */
export const setupShareDialog = ({
  button, name, token, origin = window.location.origin, fallbackFocus = () => null, fetch: fetchImpl
}) => {
  const mode = shareMode(token)
  const pageLink = shareUrl(origin, name, token)
  const titleId = uniqueId('share-title')
  const dialog = /** @type {HTMLDialogElement} */ (el('dialog', {
    class: 'share-dialog', 'data-testid': 'share-dialog', 'data-mode': mode, 'aria-labelledby': titleId
  }))
  const close = /** @type {HTMLButtonElement} */ (el('button', {
    class: 'button button-quiet button-icon', type: 'button', 'aria-label': 'Close', title: 'Close (Esc)',
    'data-testid': 'share-close'
  }, [el('span', { 'aria-hidden': 'true' }, ['×'])]))
  close.addEventListener('click', () => dialog.close())
  const title = el('h2', { class: 'share-title', id: titleId }, ['Share ', el('span', { class: 'share-name' }, [name])])
  const body = el('div', { class: 'share-body' })
  dialog.append(el('div', { class: 'share-head' }, [title, close]), body)

  /** Recomputed on each opening (time passes). @type {() => void} */
  let refresh = () => {}

  if (mode === 'open') {
    const field = linkField({ label: 'Address of this document', testid: 'share-address', dialog })
    field.input.value = pageLink
    field.input.dataset.autofocus = ''
    body.append(
      el('p', { class: 'share-note', 'data-testid': 'share-note' }, [
        'This server runs in open mode: anyone with the address can read and edit this document. ' +
        'There are no access links to create.'
      ]),
      field.wrap
    )
  } else if (mode === 'limited') {
    const role = roleOfToken(token)
    const expiry = tokenExpiry(token)
    const field = linkField({ label: 'This page’s link', testid: 'share-page-link', dialog })
    field.input.value = pageLink
    field.input.dataset.autofocus = ''
    const grants = el('p', { class: 'hint' }, [
      `Whoever opens it can ${ROLE_RANK[role] >= ROLE_RANK.write ? 'read and edit' : 'read'} what this page can`,
      ...(expiry === null ? ['.'] : [', until ', timeElement(expiry), '.'])
    ])
    body.append(
      el('p', { class: 'share-note', 'data-testid': 'share-note' }, [
        `Only an admin can create new links. This page has ${role} access; you can share its own link.`
      ]),
      field.wrap,
      grants
    )
  } else {
    const form = /** @type {HTMLFormElement} */ (el('form', { class: 'share-form', 'data-testid': 'share-form' }))
    const role = selectField('What they can do', 'share-role', [...ROLE_CHOICES])
    const scope = selectField('Which documents', 'share-scope', scopeChoices(name, token))
    const expiry = selectField('Expires after', 'share-expiry', [])
    role.select.dataset.autofocus = ''
    const create = /** @type {HTMLButtonElement} */ (el('button', {
      class: 'button button-primary', type: 'submit', 'data-testid': 'share-create'
    }, ['Create link']))
    const error = el('p', { class: 'form-error', role: 'alert', 'data-testid': 'share-error', hidden: '' })
    const result = el('div', { class: 'share-result', 'data-testid': 'share-result', hidden: '' })
    const field = linkField({ label: 'New link', testid: 'share-link', dialog })
    const expiresNote = el('p', { class: 'hint', 'data-testid': 'share-expires' })
    result.append(field.wrap, expiresNote)
    const status = el('p', { class: 'offscreen', role: 'status' })
    form.append(role.wrap, scope.wrap, expiry.wrap, el('div', { class: 'form-row' }, [create]), error)
    body.append(form, result, status)

    refresh = () => {
      const choices = expiryChoices(Date.now() / 1000, tokenExpiry(token))
      const previous = expiry.select.value
      fillSelect(expiry.select, choices.map((c) => ({ value: String(c.seconds), label: c.label })))
      if (choices.some((c) => String(c.seconds) === previous)) expiry.select.value = previous
      expiry.select.disabled = choices.length === 0
      create.disabled = choices.length === 0
      error.hidden = choices.length > 0
      error.textContent = choices.length > 0 ? '' : 'This page’s link has expired, so it cannot create links.'
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      if (create.disabled || !token) return
      error.hidden = true
      create.disabled = true
      create.setAttribute('aria-busy', 'true')
      /** @type {{ scope: string, role: string, ttl: number, document?: string }} */
      const request = { scope: scope.select.value, role: role.select.value, ttl: Number(expiry.select.value) }
      if (request.scope.endsWith('/')) request.document = name // the link still opens this document
      try {
        const minted = await createLink({ token, request, fetch: fetchImpl })
        field.input.value = minted.url
        expiresNote.replaceChildren('Whoever opens it gets ', minted.role, ' access to ',
          minted.scope.endsWith('/') ? `every document in ${minted.scope}` : 'this document',
          ' until ', timeElement(minted.expires_at), '.')
        result.hidden = false
        status.textContent = 'Link created.'
        field.input.focus()
      } catch (problem) {
        error.textContent = problem instanceof ApiError ? problem.message : 'The link could not be created.'
        error.hidden = false
      } finally {
        create.disabled = false
        create.removeAttribute('aria-busy')
      }
    })
    // a change of choice makes the shown link stale: hide it rather than let it be mistaken
    form.addEventListener('change', () => {
      result.hidden = true
      field.input.value = ''
      status.textContent = ''
    })
  }

  dialog.append(el('div', { class: 'form-row share-foot' }, [
    (() => {
      const done = el('button', { class: 'button', type: 'button', 'data-testid': 'share-done' }, ['Done'])
      done.addEventListener('click', () => dialog.close())
      return done
    })()
  ]))
  document.body.append(dialog)

  /** @type {HTMLElement | null} */
  let opener = null
  /** @return {HTMLElement[]} */
  const focusable = () => /** @type {HTMLElement[]} */ ([...dialog.querySelectorAll('button, input, select')]
    .filter((e) => !(/** @type {HTMLButtonElement} */ (e)).disabled && isShown(/** @type {HTMLElement} */ (e))))

  // Tab and Shift-Tab go round the dialog's controls (showModal keeps the page inert, but lets
  // the focus leave for the browser's own controls)
  dialog.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return
    const list = focusable()
    if (list.length === 0) return
    const first = list[0]
    const last = list[list.length - 1]
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault()
      last.focus()
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault()
      first.focus()
    }
  })
  dialog.addEventListener('close', () => {
    const back = opener && isShown(opener) ? opener : fallbackFocus()
    opener = null
    back?.focus()
  })

  const open = () => {
    if (dialog.open) return
    opener = document.activeElement instanceof HTMLElement && document.activeElement !== document.body
      ? document.activeElement
      : button
    refresh()
    dialog.showModal()
    const first = /** @type {HTMLElement | null} */ (dialog.querySelector('[data-autofocus]')) ?? focusable()[0]
    first?.focus()
  }
  button.setAttribute('aria-haspopup', 'dialog')
  button.addEventListener('click', open)

  return { open, close: () => dialog.close(), dialog, mode }
}
