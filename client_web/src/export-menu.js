// The toolbar's Export menu: one item per format of GET /api/docs/{name}/export, each a download.
//
// A menu button (WAI-ARIA "menu button" pattern): Enter, Space or ↓ opens it on the first item,
// ↑ on the last; ↑/↓/Home/End move, Esc closes it and returns to the button, Tab leaves it, and a
// click elsewhere closes it. The file is fetched with the page's token (api.js) and saved from a
// blob URL under the server's file name, so a refused export shows a message instead of
// downloading an error page. When the server cannot be reached, the formats this device can
// make from its own copy (local-export.js) are made here instead.
import { EXPORT_FORMATS } from './api.js'

/**
 * @param {object} opts
 * @param {HTMLElement} opts.wrap the element holding the button and the menu
 * @param {HTMLButtonElement} opts.button
 * @param {HTMLElement} opts.menu
 * @param {ReturnType<typeof import('./api.js').createApi>} opts.api
 * @param {(text: string, kind?: 'info' | 'error') => void} opts.notify
 * @param {(format: string) => { blob: Blob, filename: string } | null} [opts.local] the export
 *   made from this device's copy, null for a format that needs the server
 * @param {() => boolean} [opts.unreachable] the server is known to be out of reach right now
 */
export const setupExportMenu = ({ wrap, button, menu, api, notify, local = () => null, unreachable = () => false }) => {
  const items = EXPORT_FORMATS.map(({ format, label, hint }) => {
    const item = document.createElement('button')
    item.type = 'button'
    item.className = 'menu-item'
    item.setAttribute('role', 'menuitem')
    item.tabIndex = -1
    item.dataset.testid = `export-${format}`
    item.dataset.format = format
    const text = document.createElement('span')
    text.className = 'menu-label'
    text.textContent = label
    const small = document.createElement('span')
    small.className = 'menu-hint'
    small.textContent = hint
    item.append(text, small)
    item.addEventListener('click', () => {
      close(true)
      download(format, label)
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
  const close = (returnFocus = false) => {
    if (!isOpen()) return
    menu.hidden = true
    button.setAttribute('aria-expanded', 'false')
    if (returnFocus) button.focus()
  }

  /**
   * The server's export, or this device's own when the server cannot be reached (no answer, or
   * a proxy's 5xx in front of a server that is down).
   *
   * @param {string} format
   * @return {Promise<{ blob: Blob, filename: string, fromDevice: boolean }>}
   */
  const fetchExport = async (format) => {
    const own = unreachable() ? local(format) : null
    if (own) return { ...own, fromDevice: true }
    try {
      return { ...(await api.exportFile(format)), fromDevice: false }
    } catch (error) {
      const status = /** @type {{ status?: number }} */ (error).status
      const made = status === 0 || (typeof status === 'number' && status >= 500) ? local(format) : null
      if (made) return { ...made, fromDevice: true }
      throw error
    }
  }

  let busy = 0
  /** @param {string} format @param {string} label */
  const download = async (format, label) => {
    busy++
    button.setAttribute('aria-busy', 'true')
    try {
      const { blob, filename, fromDevice } = await fetchExport(format)
      const url = URL.createObjectURL(blob)
      const link = document.createElement('a')
      link.href = url
      link.download = filename
      link.hidden = true
      document.body.append(link)
      link.click()
      link.remove()
      // the download has started from the blob by now; keep it a while for slow browsers
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000)
      notify(fromDevice
        ? `Exported ${label} from the copy on this device (the server can't be reached): ${filename}`
        : `Exported ${label}: ${filename}`)
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error')
    } finally {
      busy--
      if (busy === 0) button.removeAttribute('aria-busy')
    }
  }

  button.addEventListener('click', () => {
    if (isOpen()) close(false)
    else open(0)
  })
  button.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown') {
      event.preventDefault()
      open(0)
    } else if (event.key === 'ArrowUp') {
      event.preventDefault()
      open(items.length - 1)
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
      default: {
        // type-ahead: the first item whose label starts with the key
        if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) {
          const key = event.key.toLowerCase()
          const found = items.findIndex((item) => (item.textContent ?? '').toLowerCase().startsWith(key))
          if (found >= 0) focusItem(found)
        }
      }
    }
  })
  document.addEventListener('pointerdown', (event) => {
    if (isOpen() && event.target instanceof Node && !wrap.contains(event.target)) close(false)
  })
  wrap.addEventListener('focusout', (event) => {
    // focus went somewhere outside the menu (not to the button or an item)
    const next = event.relatedTarget
    if (isOpen() && next instanceof Node && !wrap.contains(next)) close(false)
  })

  return { open, close, download }
}
