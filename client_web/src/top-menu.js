// The top toolbar's "More" (⋯) menu on a narrow screen (a phone): the top bar keeps one row with
// the document's name, the connection dot and Edit / Split / View; Export, Document, History, Copy link,
// Share and the theme choice move into a popup under the "⋯" button, and back where they were on a
// wide screen. The elements themselves move (re-parented), so their handlers, ids and
// data-testids stay the same.
//
// The button opens a non-modal popup (aria-haspopup=dialog, aria-expanded): Enter, Space or ↓
// open it on its first control, ↑/↓ move between its controls, Esc closes it and returns to the
// button, a click elsewhere or the focus leaving closes it. History, Copy link and an export
// close it too.

/**
 * @param {object} opts
 * @param {HTMLElement} opts.wrap the element holding the button and the popup (hidden when wide)
 * @param {HTMLButtonElement} opts.button
 * @param {HTMLElement} opts.panel the popup
 * @param {HTMLElement[]} opts.items what moves into the popup, in its order
 * @param {string} [opts.query] when the items are in the popup
 */
export const setupTopMenu = ({ wrap, button, panel, items, query = '(max-width: 600px)' }) => {
  // where each item goes back to
  const markers = items.map((item) => {
    const marker = document.createComment(`place of #${item.id}`)
    item.before(marker)
    return marker
  })

  const isOpen = () => !panel.hidden
  /** @return {HTMLElement[]} */
  const controls = () => /** @type {HTMLElement[]} */ ([...panel.querySelectorAll('button, select')]
    .filter((el) => !el.closest('[role=menu]') && !/** @type {HTMLButtonElement} */ (el).disabled))
  /** @param {number} index */
  const focusControl = (index) => {
    const list = controls()
    if (list.length > 0) list[((index % list.length) + list.length) % list.length].focus()
  }
  /** @param {number} [focusIndex] */
  const open = (focusIndex = 0) => {
    panel.hidden = false
    button.setAttribute('aria-expanded', 'true')
    focusControl(focusIndex)
  }
  /** @param {boolean} [returnFocus] */
  const close = (returnFocus = false) => {
    if (!isOpen()) return
    panel.hidden = true
    button.setAttribute('aria-expanded', 'false')
    if (returnFocus) button.focus()
  }

  button.addEventListener('click', () => (isOpen() ? close(false) : open(0)))
  button.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      open(event.key === 'ArrowDown' ? 0 : -1)
    }
  })
  panel.addEventListener('keydown', (event) => {
    // the Export menu's own keys (it prevents the default of what it handles) and a select's arrows
    if (event.defaultPrevented) return
    const target = /** @type {HTMLElement} */ (event.target)
    if (event.key === 'Escape') {
      event.preventDefault()
      close(true)
      return
    }
    if (target.tagName === 'SELECT' || target.closest('[role=menu]')) return
    const index = controls().indexOf(target)
    if (event.key === 'ArrowDown') { event.preventDefault(); focusControl(index + 1) }
    else if (event.key === 'ArrowUp') { event.preventDefault(); focusControl(index - 1) }
  })
  panel.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null
    if (!target) return
    if (target.closest('#history-button, #share-button, #document-list')) close(false) // the panel / dialog takes the focus
    else if (target.closest('#copy-link, [role=menuitem]')) close(true)
  })
  document.addEventListener('pointerdown', (event) => {
    if (isOpen() && event.target instanceof Node && !wrap.contains(event.target)) close(false)
  })
  wrap.addEventListener('focusout', (event) => {
    const next = event.relatedTarget
    if (isOpen() && next instanceof Node && !wrap.contains(next)) close(false)
  })

  const media = window.matchMedia(query)
  const place = () => {
    if (media.matches) {
      panel.append(...items)
      wrap.hidden = false
    } else {
      close(false)
      wrap.hidden = true
      items.forEach((item, i) => markers[i].after(item))
    }
  }
  media.addEventListener('change', place)
  place()

  return { open, close, isOpen }
}
