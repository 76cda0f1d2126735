// The toolbar's Edit / Split / View switch. The choice is remembered by this browser
// (localStorage `tandem:view-mode`) and shown as `body[data-view-mode]`, which style.css lays
// out: Edit is the source alone, Split the source beside the rendered document, View the
// rendered document alone with its table of contents.

export const MODES = /** @type {const} */ (['edit', 'split', 'view'])
export const MODE_KEY = 'tandem:view-mode'

/** @typedef {typeof MODES[number]} Mode */

/** @param {string | null} value @return {Mode} what a stored value means (Edit if unknown) */
export const modeOf = (value) => /** @type {Mode} */ (MODES.find((mode) => mode === value) ?? 'edit')

/**
 * @param {object} opts
 * @param {HTMLElement} opts.group holds one button per mode (`data-mode`)
 * @param {HTMLElement} opts.body gets `data-view-mode`
 * @param {{ get: (key: string) => string | null, set: (key: string, value: string) => void }} opts.storage
 * @param {(mode: Mode) => void} opts.onChange after the layout changed
 */
export const setupViewModes = ({ group, body, storage, onChange }) => {
  const buttons = /** @type {HTMLButtonElement[]} */ ([...group.querySelectorAll('button[data-mode]')])
  let mode = modeOf(storage.get(MODE_KEY))

  const show = () => {
    body.dataset.viewMode = mode
    for (const button of buttons) button.setAttribute('aria-pressed', String(button.dataset.mode === mode))
  }

  /** @param {Mode} next */
  const set = (next) => {
    if (next === mode) return
    mode = next
    storage.set(MODE_KEY, mode)
    show()
    onChange(mode)
  }

  for (const button of buttons) button.addEventListener('click', () => set(modeOf(button.dataset.mode ?? null)))
  show()
  return { mode: () => mode, set }
}
