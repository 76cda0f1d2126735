// Duplicate and delete a document, for the home page's rows (home-actions.js) and the editor's
// Document menu (document-menu.js): the requests and their confirmations.
//
//   POST /api/docs/<name>/duplicate {"to": "<new name>"}   write role on the copy, read on <name>
//   DELETE /api/docs/<name>                                admin role
//
// Each confirmation is a modal <dialog> (showModal: the page behind is inert; Tab goes round the
// dialog's controls, Esc cancels, and the focus goes back to what opened it, or to `fallbackFocus`
// when that is gone or hidden, e.g. a deleted row, the phone's closed "⋯" panel). The Duplicate
// dialog asks for the copy's name (prefilled "<name>-copy") and shows the server's refusal (409:
// the name is taken, 400: not a valid name) without closing; Delete names the document and says
// what goes with it. Names reach the page only through textContent and encoded paths.
import { ApiError, apiErrorMessage } from './api.js'
import { ROLE_RANK, roleOfToken, tokenPayload } from './access.js'
import { DOCUMENT_NAME_MAX_LENGTH, documentApiPath, documentNameProblem } from './protocol.js'

/**
 * What a page's token lets it do to documents: duplicate (write on a new name: a token for one
 * document cannot make another) and delete (admin). No token: open mode, everything.
 *
 * @param {string | null | undefined} token
 * @return {{ canDuplicate: boolean, canDelete: boolean, canCreate: boolean, prefix: string }}
 *   `canCreate`: make a new document by import (admin); `prefix`: what every new name must start
 *   with (the token's folder, '' for any)
 */
export const documentPowers = (token) => {
  const rank = ROLE_RANK[roleOfToken(token)] ?? ROLE_RANK.read
  const scope = token ? tokenPayload(token)?.doc : '*'
  const anyName = scope === '*' || (typeof scope === 'string' && scope.endsWith('/'))
  return {
    canDuplicate: rank >= ROLE_RANK.write && anyName,
    canDelete: rank >= ROLE_RANK.admin,
    canCreate: rank >= ROLE_RANK.admin && anyName,
    prefix: typeof scope === 'string' && scope.endsWith('/') ? scope : ''
  }
}

/**
 * The first of `<base>`, `<base>-2`, `<base>-3`… that is not in `taken` (kept within the name
 * length limit).
 *
 * @param {string} base a valid document name
 * @param {Iterable<string>} [taken]
 * @return {string}
 */
export const freeName = (base, taken = []) => {
  const names = new Set(taken)
  if (!names.has(base)) return base
  for (let n = 2; ; n++) {
    const suffix = `-${n}`
    const candidate = base.slice(0, DOCUMENT_NAME_MAX_LENGTH - suffix.length) + suffix
    if (!names.has(candidate)) return candidate
  }
}

/**
 * The name a copy of `name` is offered: "<name>-copy", or the first free "-copy-2"….
 *
 * @param {string} name
 * @param {Iterable<string>} [taken]
 * @return {string}
 */
export const copyName = (name, taken = []) =>
  freeName(name.slice(0, DOCUMENT_NAME_MAX_LENGTH - 5) + '-copy', taken)

/**
 * A sentence for a refused duplicate.
 *
 * @param {unknown} error
 * @param {string} to the name asked for
 * @return {string}
 */
export const duplicateErrorMessage = (error, to) => {
  const status = /** @type {{ status?: unknown }} */ (error)?.status
  const detail = /** @type {{ detail?: unknown }} */ (error)?.detail
  if (status === 409 && typeof detail === 'string' && detail.includes('nothing to copy')) {
    return 'This document is empty: there is nothing to copy yet.'
  }
  if (status === 409) return `A document named "${to}" exists already. Choose another name.`
  if (status === 400) return `"${to}" cannot be a document name${typeof detail === 'string' && detail ? ` (${detail})` : ''}.`
  if (status === 403) return `Your access link does not allow making a document named "${to}".`
  return error instanceof Error ? error.message : String(error)
}

/**
 * @param {object} opts
 * @param {string} opts.url
 * @param {string} opts.method
 * @param {string | null} opts.token
 * @param {unknown} [opts.json]
 * @param {string} opts.action for the error message
 * @param {typeof fetch} [opts.fetch]
 * @return {Promise<Response>} a 2xx response; throws an ApiError otherwise
 */
const send = async ({ url, method, token, json, action, fetch: fetchImpl = (...args) => fetch(...args) }) => {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' }
  if (token) headers.Authorization = `Bearer ${token}`
  /** @type {RequestInit} */
  const init = { method, headers, cache: 'no-store', credentials: 'same-origin' }
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(json)
  }
  let response
  try {
    response = await fetchImpl(url, init)
  } catch {
    throw new ApiError(0, apiErrorMessage(0, '', action))
  }
  if (!response.ok) {
    let detail = ''
    try {
      const body = await response.json()
      detail = body && typeof body.error === 'string' ? body.error : ''
    } catch {
      detail = ''
    }
    throw new ApiError(response.status, apiErrorMessage(response.status, detail, action), detail)
  }
  return response
}

/**
 * @param {object} opts
 * @param {string} opts.name the source
 * @param {string} opts.to the copy's name
 * @param {string | null} opts.token
 * @param {typeof fetch} [opts.fetch]
 * @return {Promise<string>} the copy's name
 */
export const duplicateDocument = async ({ name, to, token, fetch: fetchImpl }) => {
  const response = await send({
    url: documentApiPath(name, '/duplicate'), method: 'POST', token, json: { to },
    action: `duplicate "${name}"`, fetch: fetchImpl
  })
  const body = await response.json()
  return typeof body?.name === 'string' ? body.name : to
}

/**
 * @param {object} opts
 * @param {string} opts.name
 * @param {string | null} opts.token
 * @param {typeof fetch} [opts.fetch]
 * @return {Promise<void>}
 */
export const deleteDocument = async ({ name, token, fetch: fetchImpl }) => {
  await send({ url: documentApiPath(name), method: 'DELETE', token, action: `delete "${name}"`, fetch: fetchImpl })
}

// --- the dialogs ----------------------------------------------------------------------------

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

/** @param {HTMLElement} element */
const isShown = (element) => element.isConnected && element.getClientRects().length > 0

/**
 * A modal dialog's common behaviour: focus in on open, round-trip Tab, back out on close.
 *
 * @param {HTMLDialogElement} dialog
 * @param {() => HTMLElement | null} fallbackFocus
 */
const modal = (dialog, fallbackFocus) => {
  /** @type {HTMLElement | null} */
  let opener = null
  const focusable = () => /** @type {HTMLElement[]} */ ([...dialog.querySelectorAll('button, input')]
    .filter((e) => !(/** @type {HTMLButtonElement} */ (e)).disabled && isShown(/** @type {HTMLElement} */ (e))))
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
  return {
    /** @param {HTMLElement} first what takes the focus */
    open (first) {
      opener = document.activeElement instanceof HTMLElement && document.activeElement !== document.body
        ? document.activeElement
        : null
      dialog.showModal()
      first.focus()
    },
    /** @return {Promise<void>} once the focus is back out (the close event comes a task later):
     *  whatever moves the focus after a dialog's work must wait for it */
    close () {
      if (!dialog.open) return Promise.resolve()
      return new Promise((resolve) => {
        dialog.addEventListener('close', () => resolve(), { once: true })
        dialog.close()
      })
    }
  }
}

let ids = 0
/** @param {string} base */
const uniqueId = (base) => `${base}-${++ids}`

/**
 * The Duplicate dialog: the copy's name, then POST …/duplicate.
 *
 * @param {object} opts
 * @param {string | null} opts.token
 * @param {(copy: string, source: string) => void | Promise<void>} opts.done after the copy is made
 *   (the dialog is closed by then)
 * @param {() => Promise<unknown>} [opts.before] awaited before the request (the editor: its edits saved)
 * @param {() => HTMLElement | null} [opts.fallbackFocus]
 * @param {typeof fetch} [opts.fetch]
 */
export const setupDuplicateDialog = ({ token, done, before = async () => {}, fallbackFocus = () => null, fetch: fetchImpl }) => {
  const titleId = uniqueId('duplicate-title')
  const inputId = uniqueId('duplicate-name')
  const hintId = uniqueId('duplicate-hint')
  const errorId = uniqueId('duplicate-error')
  const dialog = /** @type {HTMLDialogElement} */ (el('dialog', {
    class: 'doc-dialog', 'data-testid': 'duplicate-dialog', 'aria-labelledby': titleId
  }))
  const subject = el('span', { class: 'doc-dialog-name' })
  const title = el('h2', { class: 'doc-dialog-title', id: titleId }, ['Duplicate ', subject])
  const input = /** @type {HTMLInputElement} */ (el('input', {
    id: inputId, type: 'text', 'data-testid': 'duplicate-name', maxlength: String(DOCUMENT_NAME_MAX_LENGTH),
    autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': `${hintId} ${errorId}`
  }))
  const error = el('p', { class: 'form-error', id: errorId, 'data-testid': 'duplicate-error', role: 'alert', hidden: '' })
  const confirm = /** @type {HTMLButtonElement} */ (el('button', {
    class: 'button button-primary', type: 'submit', 'data-testid': 'duplicate-confirm'
  }, ['Duplicate']))
  const cancel = el('button', { class: 'button', type: 'button', 'data-testid': 'duplicate-cancel' }, ['Cancel'])
  const form = el('form', { class: 'inline-form doc-dialog-form', novalidate: '' }, [
    el('label', { for: inputId }, ['Name of the copy']),
    input,
    el('p', { class: 'hint', id: hintId }, [
      'The copy starts with the current text and images, and has a history of its own. ',
      'Letters, digits and . _ ~ - / (no spaces).'
    ]),
    error,
    el('div', { class: 'form-row doc-dialog-buttons' }, [confirm, cancel])
  ])
  dialog.append(title, form)
  document.body.append(dialog)
  const box = modal(dialog, fallbackFocus)

  let source = ''
  let busy = false
  /** @param {string} [text] */
  const showError = (text) => {
    error.textContent = text ?? ''
    error.hidden = !text
    if (text) input.setAttribute('aria-invalid', 'true')
    else input.removeAttribute('aria-invalid')
  }
  cancel.addEventListener('click', () => box.close())
  dialog.addEventListener('cancel', (event) => { if (busy) event.preventDefault() })
  input.addEventListener('input', () => showError())
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    if (busy) return
    const to = input.value.trim()
    const problem = to === source ? 'Choose a name other than the document’s own.' : documentNameProblem(to)
    if (problem !== null) {
      showError(problem)
      input.focus()
      return
    }
    busy = true
    confirm.disabled = true
    confirm.setAttribute('aria-busy', 'true')
    showError()
    try {
      await before()
      const copy = await duplicateDocument({ name: source, to, token, fetch: fetchImpl })
      busy = false
      await box.close()
      await done(copy, source)
    } catch (failure) {
      showError(duplicateErrorMessage(failure, to))
      input.focus()
      input.select()
    } finally {
      busy = false
      confirm.disabled = false
      confirm.removeAttribute('aria-busy')
    }
  })

  return {
    dialog,
    /**
     * @param {string} name the document to copy
     * @param {Iterable<string>} [taken] names known to exist (the offered name avoids them)
     */
    open (name, taken = []) {
      source = name
      subject.textContent = name
      input.value = copyName(name, taken)
      showError()
      box.open(input)
      input.select()
    }
  }
}

/**
 * The Delete confirmation, then DELETE /api/docs/<name>.
 *
 * @param {object} opts
 * @param {string | null} opts.token
 * @param {(name: string) => void | Promise<void>} opts.done after the deletion (dialog closed;
 *   what opened it may be gone: `done` puts the focus somewhere that stays)
 * @param {() => HTMLElement | null} [opts.fallbackFocus]
 * @param {typeof fetch} [opts.fetch]
 */
export const setupDeleteDialog = ({ token, done, fallbackFocus = () => null, fetch: fetchImpl }) => {
  const titleId = uniqueId('delete-title')
  const textId = uniqueId('delete-text')
  const dialog = /** @type {HTMLDialogElement} */ (el('dialog', {
    class: 'doc-dialog', role: 'alertdialog', 'data-testid': 'delete-dialog',
    'aria-labelledby': titleId, 'aria-describedby': textId
  }))
  const subject = el('span', { class: 'doc-dialog-name' })
  const title = el('h2', { class: 'doc-dialog-title', id: titleId }, ['Delete ', subject, '?'])
  const text = el('p', { class: 'doc-dialog-text', id: textId }, [
    'The document, its versions and its images are deleted for everyone, and its open editors ',
    'are told so. This cannot be undone: export it first to keep a copy.'
  ])
  const error = el('p', { class: 'form-error', 'data-testid': 'delete-error', role: 'alert', hidden: '' })
  const confirm = /** @type {HTMLButtonElement} */ (el('button', {
    class: 'button button-danger', type: 'button', 'data-testid': 'delete-confirm'
  }, ['Delete']))
  const cancel = el('button', { class: 'button', type: 'button', 'data-testid': 'delete-cancel' }, ['Keep it'])
  dialog.append(title, text, error, el('div', { class: 'form-row doc-dialog-buttons' }, [confirm, cancel]))
  document.body.append(dialog)
  const box = modal(dialog, fallbackFocus)

  let target = ''
  let busy = false
  cancel.addEventListener('click', () => box.close())
  dialog.addEventListener('cancel', (event) => { if (busy) event.preventDefault() })
  confirm.addEventListener('click', async () => {
    if (busy) return
    busy = true
    confirm.disabled = true
    confirm.setAttribute('aria-busy', 'true')
    error.hidden = true
    const name = target
    try {
      await deleteDocument({ name, token, fetch: fetchImpl })
      busy = false
      await box.close()
      await done(name)
    } catch (failure) {
      const status = /** @type {{ status?: unknown }} */ (failure)?.status
      error.textContent = status === 403
        ? 'Only an admin can delete documents, and your access link does not allow it.'
        : failure instanceof Error ? failure.message : String(failure)
      error.hidden = false
    } finally {
      busy = false
      confirm.disabled = false
      confirm.removeAttribute('aria-busy')
    }
  })

  return {
    dialog,
    /** @param {string} name */
    open (name) {
      target = name
      subject.textContent = name
      error.hidden = true
      // the safe choice has the focus: Enter right away keeps the document
      box.open(cancel)
    }
  }
}
