// The list of people in the document, drawn from the awareness states (yourself included).
// Every string goes through textContent: a name is never parsed as HTML.

/**
 * @typedef {{ clientId: number, name: string, color: string, self: boolean, sameUser: boolean }} Participant
 */

const FALLBACK_COLOR = '#6b7280'

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
    const user = state && typeof state.user === 'object' && state.user !== null ? state.user : {}
    const name = typeof user.name === 'string' && user.name.trim() ? user.name.trim().slice(0, 60) : 'Anonymous'
    const color = typeof user.color === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(user.color) ? user.color.slice(0, 7) : FALLBACK_COLOR
    list.push({
      clientId,
      name,
      color,
      self: clientId === selfId,
      sameUser: clientId !== selfId && typeof user.id === 'string' && user.id === personId
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
