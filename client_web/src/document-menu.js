// The editor's Document menu: "Duplicate…" and "Delete…" (document-actions.js's dialogs), as
// far as the page's token allows (Delete for an admin only; the menu is hidden when it would be
// empty). A menu button like Export (export-menu.js): Enter, Space or ↓ open it on the first
// item, ↑ on the last; ↑/↓/Home/End move, Esc closes it and returns to the button, Tab or a click
// elsewhere close it. On a phone it sits in the "⋯" panel (top-menu.js), which closes when an
// item is chosen; the dialog's focus then goes back to the "⋯" button (`fallbackFocus`).
//
// Duplicate first waits (a while) for this page's edits to be saved, so the copy has them, then
// opens the copy. Delete, once the server has deleted it, forgets this device's copy (its
// IndexedDB and unsaved counter, as "Discard my copy" does) and goes to the home page.
import { documentPowers, setupDeleteDialog, setupDuplicateDialog } from './document-actions.js'
import { documentPath } from './protocol.js'

/**
 * @param {object} opts
 * @param {HTMLElement} opts.wrap the element holding the button and the menu
 * @param {HTMLButtonElement} opts.button
 * @param {HTMLElement} opts.menu
 * @param {string} opts.name the document
 * @param {string | null} opts.token the page's `?token=`
 * @param {() => Promise<unknown>} opts.waitForSaved until this page's edits are on the server
 * @param {() => Promise<void>} opts.forgetLocal drop this device's copy of the document
 * @param {() => boolean} [opts.deleted] the document is deleted already (nothing to do)
 * @param {() => HTMLElement | null} [opts.fallbackFocus] the "⋯" button on a phone
 * @param {(url: string) => void} [opts.navigate]
 * @return {{ open: (focusIndex?: number) => void, close: (returnFocus?: boolean) => void } | null}
 *   null when the token allows neither (the menu is hidden then: leave it out of the "⋯" panel)
 */
export const setupDocumentMenu = ({
  wrap, button, menu, name, token, waitForSaved, forgetLocal,
  deleted = () => false,
  fallbackFocus = () => null,
  navigate = (url) => window.location.assign(url)
}) => {
  const powers = documentPowers(token)
  const withToken = (/** @type {string} */ path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path)
  const back = () => (button.getClientRects().length > 0 ? button : fallbackFocus())

  /** @type {{ label: string, testid: string, run: () => void }[]} */
  const choices = []
  if (powers.canDuplicate) {
    const dialog = setupDuplicateDialog({
      token,
      before: waitForSaved,
      fallbackFocus: back,
      done: (copy) => navigate(withToken(documentPath(copy)))
    })
    choices.push({ label: 'Duplicate…', testid: 'document-duplicate', run: () => dialog.open(name) })
  }
  if (powers.canDelete) {
    const dialog = setupDeleteDialog({
      token,
      fallbackFocus: back,
      done: async () => {
        try {
          await forgetLocal()
        } catch (error) {
          console.warn('Tandem: could not forget the copy on this device', error)
        }
        navigate(withToken('/'))
      }
    })
    choices.push({ label: 'Delete…', testid: 'document-delete', run: () => dialog.open(name) })
  }
  if (choices.length === 0) {
    wrap.hidden = true
    return null
  }

  const items = choices.map(({ label, testid, run }) => {
    const item = document.createElement('button')
    item.type = 'button'
    item.className = 'menu-item'
    item.setAttribute('role', 'menuitem')
    item.tabIndex = -1
    item.dataset.testid = testid
    const text = document.createElement('span')
    text.className = 'menu-label'
    text.textContent = label
    item.append(text)
    item.addEventListener('click', () => {
      close(false)
      if (deleted()) return
      run()
    })
    return item
  })
  menu.replaceChildren(...items)

  const isOpen = () => !menu.hidden
  /** @param {number} index */
  const focusItem = (index) => {
    const n = items.length
    items[((index % n) + n) % n].focus()
  }
  /** @param {number} [focusIndex] */
  const open = (focusIndex = 0) => {
    menu.hidden = false
    button.setAttribute('aria-expanded', 'true')
    focusItem(focusIndex)
  }
  /** @param {boolean} [returnFocus] */
  function close (returnFocus = false) {
    if (!isOpen()) return
    menu.hidden = true
    button.setAttribute('aria-expanded', 'false')
    if (returnFocus) button.focus()
  }

  button.addEventListener('click', () => (isOpen() ? close(false) : open(0)))
  button.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      open(event.key === 'ArrowDown' ? 0 : items.length - 1)
    }
  })
  menu.addEventListener('keydown', (event) => {
    const index = items.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement))
    switch (event.key) {
      case 'ArrowDown': event.preventDefault(); focusItem(index + 1); break
      case 'ArrowUp': event.preventDefault(); focusItem(index - 1); break
      case 'Home': event.preventDefault(); focusItem(0); break
      case 'End': event.preventDefault(); focusItem(items.length - 1); break
      case 'Escape': event.preventDefault(); event.stopPropagation(); close(true); break
      case 'Tab': close(false); break
    }
  })
  document.addEventListener('pointerdown', (event) => {
    if (isOpen() && event.target instanceof Node && !wrap.contains(event.target)) close(false)
  })
  wrap.addEventListener('focusout', (event) => {
    const next = event.relatedTarget
    if (isOpen() && next instanceof Node && !wrap.contains(next)) close(false)
  })

  return { open, close }
}
