// Who am I: a display name and a colour, remembered in this browser (localStorage), so every tab
// and every later visit shows the same person in the same colour.

/** Where the display name is remembered (other tabs of this browser hear of a rename through it). */
export const NAME_KEY = 'tandem:name'
const COLOR_KEY = 'tandem:color'
const ID_KEY = 'tandem:person'

export const MAX_NAME_LENGTH = 40

/** Saturated colours that keep white label text readable (contrast >= 4.5:1 on most). */
export const PALETTE = Object.freeze([
  '#1d4ed8', '#b91c1c', '#15803d', '#7e22ce', '#c2410c',
  '#0e7490', '#be185d', '#4338ca', '#a16207', '#0f766e'
])

const ADJECTIVES = ['Amber', 'Brave', 'Calm', 'Clever', 'Eager', 'Gentle', 'Happy', 'Lucky', 'Quiet', 'Swift', 'Witty', 'Bold']
const ANIMALS = ['Otter', 'Heron', 'Fox', 'Lynx', 'Panda', 'Robin', 'Badger', 'Koala', 'Falcon', 'Seal', 'Hare', 'Wren']

/** @template T @param {readonly T[]} list @return {T} */
const pick = (list) => list[Math.floor(Math.random() * list.length)]

/** localStorage can throw (disabled storage, quota): identity then lasts as long as the page. */
const storage = {
  /** @param {string} key @return {string | null} */
  get (key) {
    try { return window.localStorage.getItem(key) } catch { return null }
  },
  /** @param {string} key @param {string} value */
  set (key, value) {
    try { window.localStorage.setItem(key, value) } catch { /* not remembered: still works */ }
  },
  /** @param {string} key */
  remove (key) {
    try { window.localStorage.removeItem(key) } catch { /* nothing to forget */ }
  }
}

/**
 * @param {string} hex '#rrggbb'
 * @return {string} the same colour, translucent (for selections)
 */
export const lightColor = (hex) => hex + '33'

/** @param {string} name */
export const cleanName = (name) => name.replace(/\s+/g, ' ').trim().slice(0, MAX_NAME_LENGTH)

/**
 * @return {{ id: string, name: string, color: string }}
 */
export const loadIdentity = () => {
  let id = storage.get(ID_KEY)
  if (!id) {
    id = Math.random().toString(36).slice(2, 12)
    storage.set(ID_KEY, id)
  }
  let color = storage.get(COLOR_KEY)
  if (!color || !PALETTE.includes(color)) {
    color = pick(PALETTE)
    storage.set(COLOR_KEY, color)
  }
  let name = cleanName(storage.get(NAME_KEY) || '')
  if (!name) {
    name = `${pick(ADJECTIVES)} ${pick(ANIMALS)}`
    storage.set(NAME_KEY, name)
  }
  return { id, name, color }
}

/** @param {string} name already cleaned, not empty */
export const saveName = (name) => storage.set(NAME_KEY, name)

export { storage }
