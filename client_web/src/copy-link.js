// The toolbar's Copy link button: puts the document's address on the clipboard and says so for
// a moment ("Link copied", or "Copy failed").
import { documentPath } from './protocol.js'

/** How long the button shows the result before its label comes back. */
export const COPIED_MS = 2000

/**
 * The address to share. It carries no token: whoever opens it brings their own.
 *
 * @param {string} origin the page's (`window.location.origin`)
 * @param {string} name
 * @return {string}
 */
export const shareUrl = (origin, name) => origin + documentPath(name)

/**
 * @param {object} opts
 * @param {HTMLButtonElement} opts.button
 * @param {string} opts.url what it copies (also in its `data-url`)
 */
export const setupCopyLink = ({ button, url }) => {
  const label = button.textContent
  button.dataset.url = url
  let timer = 0
  button.addEventListener('click', async () => {
    let copied = false
    try {
      await navigator.clipboard.writeText(url)
      copied = true
    } catch {
      // no async clipboard (plain http on another host): the old way
      const field = document.createElement('textarea')
      field.value = url
      field.setAttribute('readonly', '')
      field.className = 'offscreen'
      document.body.append(field)
      field.select()
      try { copied = document.execCommand('copy') } catch { copied = false }
      field.remove()
    }
    button.textContent = copied ? 'Link copied' : 'Copy failed'
    button.dataset.copied = String(copied)
    window.clearTimeout(timer)
    timer = window.setTimeout(() => {
      button.textContent = label
      delete button.dataset.copied
    }, COPIED_MS)
  })
}
