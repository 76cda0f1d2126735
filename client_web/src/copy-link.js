// The toolbar's Copy link button: puts the document's address on the clipboard and says so for
// a moment ("Link copied", or "Copy failed"). The Share dialog (share-dialog.js) copies with
// copyText too.
import { documentPath } from './protocol.js'

/** How long the button shows the result before its label comes back. */
export const COPIED_MS = 2000

/**
 * The address of this page to share: with the page's own token when it has one, so the link
 * opens what this page opens (whoever gets it gets what the token grants; only an admin can
 * make a link that grants less: the Share dialog).
 *
 * @param {string} origin the page's (`window.location.origin`)
 * @param {string} name
 * @param {string | null} [token] the page's `?token=`
 * @return {string}
 */
export const shareUrl = (origin, name, token = null) =>
  origin + documentPath(name) + (token ? `?token=${encodeURIComponent(token)}` : '')

/**
 * Put `text` on the clipboard.
 *
 * @param {string} text
 * @param {HTMLElement} [container] where the fallback's hidden field goes: inside an open modal
 *   dialog the rest of the page is inert, so it must go into the dialog
 * @return {Promise<boolean>} whether it was copied
 */
export const copyText = async (text, container = document.body) => {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    // no async clipboard (plain http on another host): the old way
    const field = document.createElement('textarea')
    field.value = text
    field.setAttribute('readonly', '')
    field.className = 'offscreen'
    container.append(field)
    field.select()
    let copied = false
    try { copied = document.execCommand('copy') } catch { copied = false }
    field.remove()
    return copied
  }
}

/**
 * A button that copies `url()` and says so for a moment.
 *
 * @param {HTMLButtonElement} button
 * @param {() => string} url
 * @param {HTMLElement} [container] see copyText
 */
export const copyButton = (button, url, container) => {
  const label = button.textContent
  let timer = 0
  button.addEventListener('click', async () => {
    const copied = await copyText(url(), container)
    button.textContent = copied ? 'Link copied' : 'Copy failed'
    button.dataset.copied = String(copied)
    window.clearTimeout(timer)
    timer = window.setTimeout(() => {
      button.textContent = label
      delete button.dataset.copied
    }, COPIED_MS)
  })
}

/**
 * @param {object} opts
 * @param {HTMLButtonElement} opts.button
 * @param {string} opts.url what it copies (also in its `data-url`)
 */
export const setupCopyLink = ({ button, url }) => {
  button.dataset.url = url
  copyButton(button, () => url)
}
