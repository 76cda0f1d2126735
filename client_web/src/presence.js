// Presence on the editor page: this person's awareness `user` (name, colour, "viewing"), the
// participants list, and the name field. Who is who comes from identity.js; what others publish
// is checked by participants.js before anything shows it.
import { removeAwarenessStates } from 'y-protocols/awareness'

import { NAME_KEY, cleanName, lightColor, saveName } from './identity.js'
import { participantsOf, renderParticipants, sanitizeAwareness } from './participants.js'

/**
 * The awareness `user` field this page publishes.
 *
 * y-codemirror.next redraws a remote caret label only when its colour string changes, so each
 * rename alternates between '#rrggbb' and the identical-looking '#rrggbbff'.
 *
 * @param {{ id: string, color: string }} identity
 * @param {string} name the display name now
 * @param {number} renames how many times it was renamed on this page
 * @param {boolean} readOnly
 */
export const userState = (identity, name, renames, readOnly) => ({
  name,
  color: renames % 2 === 0 ? identity.color : identity.color + 'ff',
  colorLight: lightColor(identity.color),
  id: identity.id,
  ...(readOnly ? { readOnly: true } : {})
})

/**
 * Call before the editor is created: its remote carets listen to the same awareness, and
 * listeners run in order, so they only ever see checked states.
 *
 * @param {object} opts
 * @param {import('y-protocols/awareness').Awareness} opts.awareness
 * @param {{ id: string, name: string, color: string }} opts.identity
 * @param {boolean} opts.readOnly whether this page starts read-only ("viewing" for the others)
 * @param {HTMLElement} opts.list the participants list
 * @param {HTMLElement | null} opts.count where the number of participants goes
 * @return {{ name: () => string, rename: (name: string) => void,
 *            setReadOnly: (readOnly: boolean) => void }}
 */
export const setupPresence = ({ awareness, identity, readOnly, list, count }) => {
  awareness.on('change', (/** @type {{ added: number[], updated: number[] }} */ { added, updated }) => {
    sanitizeAwareness(awareness, [...added, ...updated])
  })
  let name = identity.name
  let renames = 0
  const publish = () => awareness.setLocalStateField('user', userState(identity, name, renames, readOnly))
  publish()

  const draw = () => renderParticipants(list, count, participantsOf(awareness, identity.id))
  awareness.on('change', draw)
  draw()
  // leave the participants lists of the others (and of the other tabs) at once
  window.addEventListener('pagehide', () => {
    removeAwarenessStates(awareness, [awareness.clientID], 'page closed')
  })
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) publish() // back from the back/forward cache
  })

  return {
    name: () => name,
    /** @param {string} next cleaned (identity.js cleanName), not empty */
    rename (next) {
      name = next
      renames++
      publish()
    },
    /** @param {boolean} next */
    setReadOnly (next) {
      readOnly = next
      publish()
    }
  }
}

/**
 * The name field: typing renames (remembered in localStorage), Enter goes back to the text, and a
 * rename in another tab of this browser reaches this one.
 *
 * @param {object} opts
 * @param {HTMLInputElement} opts.input
 * @param {ReturnType<typeof setupPresence>} opts.presence
 * @param {() => void} opts.done Enter in the field
 */
export const setupNameInput = ({ input, presence, done }) => {
  input.value = presence.name()
  input.addEventListener('input', () => {
    const cleaned = cleanName(input.value)
    if (!cleaned || cleaned === presence.name()) return
    saveName(cleaned)
    presence.rename(cleaned)
  })
  input.addEventListener('change', () => {
    if (!cleanName(input.value)) input.value = presence.name()
  })
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault()
      done()
    }
  })
  window.addEventListener('storage', (event) => {
    // renamed in another tab of this browser
    if (event.key === NAME_KEY && event.newValue) {
      const cleaned = cleanName(event.newValue)
      if (cleaned && cleaned !== presence.name()) {
        if (document.activeElement !== input) input.value = cleaned
        presence.rename(cleaned)
      }
    }
  })
}
