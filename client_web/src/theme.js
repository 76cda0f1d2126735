// Light or dark colours: the person's choice ('system', 'light' or 'dark'), kept in localStorage
// `tandem:theme`, 'system' following prefers-color-scheme as it changes. The page gets
// <html data-theme="light|dark" data-theme-choice="…">, which style.css's dark section reads.
//
// Built as its own small script that every page loads in <head> without `defer`, so the colours
// are right before the first paint (no white flash in the dark). It then wires the page's
// `theme-select` (if any) and follows other tabs' choices (the storage event).

export const THEME_KEY = 'tandem:theme'
export const THEME_CHOICES = Object.freeze(['system', 'light', 'dark'])

/**
 * @param {unknown} value what localStorage holds
 * @return {'system' | 'light' | 'dark'}
 */
export const themeChoice = (value) =>
  THEME_CHOICES.includes(/** @type {string} */ (value)) ? /** @type {'system'} */ (value) : 'system'

/**
 * @param {'system' | 'light' | 'dark'} choice
 * @param {boolean} systemDark prefers-color-scheme: dark
 * @return {'light' | 'dark'}
 */
export const resolveTheme = (choice, systemDark) =>
  choice === 'system' ? (systemDark ? 'dark' : 'light') : choice

const read = () => {
  try {
    return themeChoice(window.localStorage.getItem(THEME_KEY))
  } catch {
    return 'system' // storage blocked: the system's colours
  }
}

/** @param {'system' | 'light' | 'dark'} choice */
const write = (choice) => {
  try {
    if (choice === 'system') window.localStorage.removeItem(THEME_KEY)
    else window.localStorage.setItem(THEME_KEY, choice)
  } catch {
    // not remembered, still applied
  }
}

const start = () => {
  const root = document.documentElement
  const media = window.matchMedia('(prefers-color-scheme: dark)')
  /** @type {HTMLSelectElement | null} */
  let select = null

  const apply = () => {
    const choice = read()
    const theme = resolveTheme(choice, media.matches)
    root.dataset.theme = theme
    root.dataset.themeChoice = choice
    if (select && select.value !== choice) select.value = choice
  }

  apply()
  media.addEventListener('change', apply)
  window.addEventListener('storage', (event) => {
    if (event.key === THEME_KEY || event.key === null) apply()
  })
  const wire = () => {
    const element = document.getElementById('theme-select')
    if (!(element instanceof HTMLSelectElement)) return
    select = element
    select.value = read()
    select.addEventListener('change', () => {
      write(themeChoice(select?.value))
      apply()
    })
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', wire)
  else wire()
}

if (typeof document !== 'undefined') start()
