// The home page's actions on each document of the list: "Duplicate" and "Delete", each behind
// its dialog (document-actions.js), as far as the page's token allows (Delete only for an admin;
// no token is open mode, where everyone is). After a duplicate, the list shows the copy, the
// focus goes to it and the notice links to it; after a delete, the row goes, the focus moves to
// the row that took its place, and this browser's offline copy of the document goes too (its
// IndexedDB copy and unsaved counter: otherwise its editor would offer to save a copy of a
// document deleted on purpose).
//
// The notice under the list head (role=status) says what happened, here and for imports
// (home-import.js). Names reach the page only through textContent and encoded hrefs.
import { documentPowers, setupDeleteDialog, setupDuplicateDialog } from './document-actions.js'
import { deleteDatabase } from './deleted-document.js'
import { documentPath } from './protocol.js'
import { unsavedKey } from './save-tracker.js'
import { forgetUnsavedEdits } from './unsaved-store.js'

/** How long a change waits for the list to show it. */
const LIST_WAIT_MS = 20_000

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

/**
 * The page's editor link for `name` (with the page's token, as the list's links).
 *
 * @param {string} name
 * @param {string | null} token
 */
export const editorHref = (name, token) =>
  documentPath(name) + (token ? `?token=${encodeURIComponent(token)}` : '')

/**
 * The notice line under the list head.
 *
 * @param {HTMLElement} after what it goes after
 * @return {{ element: HTMLElement, show: (parts: (Node | string)[], kind?: 'info' | 'error') => void }}
 */
export const setupHomeNotice = (after) => {
  const element = el('p', { class: 'home-notice', 'data-testid': 'home-notice', role: 'status' })
  after.after(element)
  return {
    element,
    show (parts, kind = 'info') {
      element.dataset.kind = kind
      element.replaceChildren(...parts)
    }
  }
}

/**
 * A link to a document's editor, for a notice.
 *
 * @param {string} name
 * @param {string | null} token
 * @param {string} [text]
 */
export const openLink = (name, token, text = 'Open it') =>
  el('a', { href: editorHref(name, token), 'data-testid': 'notice-open' }, [text])

/**
 * Until `check()` holds after the list changed (or a while passed).
 *
 * @param {HTMLElement} list
 * @param {() => boolean} check
 * @return {Promise<boolean>}
 */
export const listShows = (list, check) => new Promise((resolve) => {
  if (check()) {
    resolve(true)
    return
  }
  const observer = new MutationObserver(() => {
    if (!check()) return
    observer.disconnect()
    window.clearTimeout(timer)
    resolve(true)
  })
  const timer = window.setTimeout(() => {
    observer.disconnect()
    resolve(check())
  }, LIST_WAIT_MS)
  observer.observe(list, { childList: true })
})

/**
 * @param {HTMLElement} list
 * @param {string} name
 * @return {HTMLElement | null} the row of `name`
 */
export const rowOf = (list, name) =>
  [.../** @type {NodeListOf<HTMLElement>} */ (list.querySelectorAll('[data-testid=doc-item]'))]
    .find((row) => row.dataset.name === name) ?? null

/** Forget this browser's offline copy of a deleted document (see editor.js, save-tracker.js). */
const forgetOfflineCopy = (/** @type {string} */ name) => {
  try {
    window.localStorage.removeItem(unsavedKey(name))
  } catch {
    // no storage (private mode): nothing kept either
  }
  // another tab holding it open closes it first; nothing waits for that here
  deleteDatabase(`tandem:${name}`).catch((error) => console.warn('Tandem: could not delete the offline copy', error))
  // and the document's list of unsaved edits, which every tab of it shares (unsaved-store.js)
  forgetUnsavedEdits(name).catch((error) => console.warn('Tandem: could not forget the unsaved edits', error))
}

/**
 * @param {object} opts
 * @param {string | null} opts.token the page's `?token=`
 * @param {HTMLElement} opts.list the document list (its rows are `[data-testid=doc-item]`)
 * @param {() => string[]} opts.names the names the list shows
 * @param {() => Promise<unknown>} opts.reload load the list again
 * @param {{ show: (parts: (Node | string)[], kind?: 'info' | 'error') => void }} opts.notice
 * @param {() => HTMLElement | null} opts.fallbackFocus where the focus goes when the list has
 *   nothing to take it
 * @return {{ forRow: (name: string) => HTMLElement | null }} the actions of one row
 */
export const setupRowActions = ({ token, list, names, reload, notice, fallbackFocus }) => {
  const powers = documentPowers(token)
  const focusLink = (/** @type {HTMLElement | null} */ row) => {
    const link = /** @type {HTMLElement | null} */ (row?.querySelector('a[href]') ?? null)
    ;(link ?? fallbackFocus())?.focus()
  }

  const duplicateDialog = powers.canDuplicate
    ? setupDuplicateDialog({
      token,
      fallbackFocus,
      done: async (copy, source) => {
        notice.show([`Made “${copy}”, a copy of “${source}”. `, openLink(copy, token)])
        reload()
        if (await listShows(list, () => rowOf(list, copy) !== null)) focusLink(rowOf(list, copy))
      }
    })
    : null

  /** @type {number} where the deleted row was, for the focus */
  let deletedAt = 0
  const deleteDialog = powers.canDelete
    ? setupDeleteDialog({
      token,
      fallbackFocus,
      done: async (name) => {
        forgetOfflineCopy(name)
        notice.show([`Deleted “${name}”.`])
        reload()
        await listShows(list, () => rowOf(list, name) === null)
        const rows = list.querySelectorAll('[data-testid=doc-item]')
        focusLink(/** @type {HTMLElement | null} */ (rows[Math.min(deletedAt, rows.length - 1)] ?? null))
      }
    })
    : null

  return {
    forRow (name) {
      if (!duplicateDialog && !deleteDialog) return null
      const actions = el('span', { class: 'doc-actions' })
      if (duplicateDialog) {
        const button = el('button', {
          class: 'button button-small', type: 'button', 'data-testid': 'doc-duplicate', 'aria-label': `Duplicate ${name}`
        }, ['Duplicate'])
        button.addEventListener('click', () => duplicateDialog.open(name, names()))
        actions.append(button)
      }
      if (deleteDialog) {
        const button = el('button', {
          class: 'button button-small doc-delete', type: 'button', 'data-testid': 'doc-delete', 'aria-label': `Delete ${name}`
        }, ['Delete'])
        button.addEventListener('click', () => {
          const row = rowOf(list, name)
          deletedAt = row ? [...list.children].indexOf(row) : 0
          deleteDialog.open(name)
        })
        actions.append(button)
      }
      return actions
    }
  }
}
