// The `notice` line at the bottom of the editor page: the results of exports and their errors.
// It hides itself after a while (errors stay longer, to be read) or when clicked.

/** How long a notice stays, by kind. */
export const NOTICE_MS = Object.freeze({ info: 5_000, error: 12_000 })

/**
 * @param {HTMLElement} element
 * @return {(text: string, kind?: 'info' | 'error') => void} shows a notice
 */
export const setupNotices = (element) => {
  let timer = 0
  element.addEventListener('click', () => { element.hidden = true })
  return (text, kind = 'info') => {
    element.textContent = text
    element.dataset.kind = kind
    element.hidden = false
    window.clearTimeout(timer)
    timer = window.setTimeout(() => { element.hidden = true }, kind === 'error' ? NOTICE_MS.error : NOTICE_MS.info)
  }
}
