// The list of people in the document, drawn from the awareness states (yourself included).
// Every string goes through textContent: a name is never parsed as HTML.
//
// Awareness states come from other people's browsers, so they are checked before anything shows
// them: sanitizeAwareness() rewrites, in place, a remote `user` whose name is not a short string
// or whose colours are not plain hex colours. y-codemirror.next draws the caret labels from the
// same states (as text nodes, with the colour in a style attribute), so a colour such as
// "red; position: fixed; inset: 0" never reaches a style attribute.

/**
 * @typedef {{ clientId: number, name: string, color: string, self: boolean, sameUser: boolean,
 *             viewer: boolean }} Participant
 */

const FALLBACK_COLOR = '#6b7280'
export const MAX_SHOWN_NAME = 60
const HEX_COLOR = /^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/

/**
 * A remote `user` awareness field as it may be shown: name a trimmed string of at most
 * MAX_SHOWN_NAME characters ('Anonymous' if none), colours plain hex or the fallback grey.
 *
 * @param {unknown} user
 * @return {{ name: string, color: string, colorLight: string, id?: string, readOnly?: boolean }}
 */
export const sanitizeUser = (user) => {
  const u = user !== null && typeof user === 'object' ? /** @type {Record<string, unknown>} */ (user) : {}
  const name = typeof u.name === 'string' && u.name.trim() ? u.name.replace(/\s+/g, ' ').trim().slice(0, MAX_SHOWN_NAME) : 'Anonymous'
  const color = typeof u.color === 'string' && HEX_COLOR.test(u.color) ? u.color : FALLBACK_COLOR
  const colorLight = typeof u.colorLight === 'string' && HEX_COLOR.test(u.colorLight) ? u.colorLight : (color.length >= 7 ? color.slice(0, 7) + '33' : color)
  /** @type {{ name: string, color: string, colorLight: string, id?: string, readOnly?: boolean }} */
  const clean = { name, color, colorLight }
  if (typeof u.id === 'string') clean.id = u.id.slice(0, 64)
  if (u.readOnly === true) clean.readOnly = true
  return clean
}

/** @param {unknown} user @param {ReturnType<typeof sanitizeUser>} clean */
const sameUser = (user, clean) => {
  if (user === null || typeof user !== 'object') return false
  const u = /** @type {Record<string, unknown>} */ (user)
  const keys = Object.keys(u)
  return keys.length === Object.keys(clean).length &&
    keys.every((key) => u[key] === clean[/** @type {keyof typeof clean} */ (key)])
}

/**
 * Rewrites the `user` of every remote awareness state that is not already clean. Call it from an
 * awareness 'change' listener registered before the editor's (listeners run in order).
 *
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {number[]} clientIds the states that were added or updated
 */
export const sanitizeAwareness = (awareness, clientIds) => {
  const states = awareness.getStates()
  for (const clientId of clientIds) {
    if (clientId === awareness.clientID) continue
    const state = states.get(clientId)
    if (!state || typeof state !== 'object' || !('user' in state)) continue
    const clean = sanitizeUser(state.user)
    if (!sameUser(state.user, clean)) state.user = clean
  }
}

/**
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {string} personId this browser's person id (other tabs of the same person share it)
 * @return {Participant[]} yourself first, then by name
 */
export const participantsOf = (awareness, personId) => {
  const selfId = awareness.clientID
  /** @type {Participant[]} */
  const list = []
  awareness.getStates().forEach((state, clientId) => {
    const user = sanitizeUser(state ? state.user : null)
    list.push({
      clientId,
      name: user.name,
      color: /^#[0-9a-fA-F]{6}/.test(user.color) ? user.color.slice(0, 7) : user.color,
      self: clientId === selfId,
      sameUser: clientId !== selfId && user.id === personId,
      viewer: user.readOnly === true
    })
  })
  list.sort((a, b) => (Number(b.self) - Number(a.self)) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
  return list
}

/**
 * @param {HTMLElement} listElement the <ul data-testid="participants">
 * @param {HTMLElement | null} countElement
 * @param {Participant[]} participants
 */
export const renderParticipants = (listElement, countElement, participants) => {
  const items = participants.map((p) => {
    const li = document.createElement('li')
    li.className = 'participant'
    li.dataset.testid = 'participant'
    li.dataset.clientId = String(p.clientId)
    if (p.self) li.dataset.self = 'true'
    const dot = document.createElement('span')
    dot.className = 'participant-dot'
    dot.setAttribute('aria-hidden', 'true')
    dot.style.setProperty('background-color', p.color)
    const name = document.createElement('span')
    name.className = 'participant-name'
    name.textContent = p.name
    li.append(dot, name)
    if (p.viewer) {
      li.dataset.viewer = 'true'
      const role = document.createElement('span')
      role.className = 'participant-role'
      role.textContent = 'viewing'
      role.title = 'Can read and follow the document, not edit it'
      li.append(' ', role)
    }
    if (p.self || p.sameUser) {
      const tag = document.createElement('span')
      tag.className = 'participant-tag'
      tag.textContent = p.self ? 'you' : 'you, other tab'
      li.append(' ', tag)
    }
    return li
  })
  listElement.replaceChildren(...items)
  if (countElement) countElement.textContent = String(participants.length)
}
