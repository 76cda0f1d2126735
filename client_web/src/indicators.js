// The editor page's indicators: `connection-status` (the rule of connection-status.js),
// `save-status` (save-tracker.js) and the `connection-detail` banner (offline, or refused by the
// server). indicatorsOf() decides what they show (pure); setupIndicators() draws it.
import { CLOSE_CODE } from './protocol.js'
import { CONNECTION_TEXT, connectionState } from './connection-status.js'
import { SAVE_TEXT } from './save-tracker.js'
import { REFUSED_TEXT } from './refused-access.js'

/** Why a server refused the connection for good (close codes 4400-4499). */
export const REFUSAL_TEXT = Object.freeze({
  [CLOSE_CODE.unauthorized]: 'The server needs a valid access token to open this document. Ask for a link that includes one.',
  [CLOSE_CODE.forbidden]: 'You are not allowed to open this document.',
  [CLOSE_CODE.badDocumentName]: 'The server does not accept this document name.',
  // shown in the document-deleted panel instead of the banner (see deleted-document.js)
  [CLOSE_CODE.documentDeleted]: 'This document was deleted on the server.'
})

export const OFFLINE_TEXT = 'You are offline. Keep writing: your changes stay on this device and are sent when the connection is back.'
export const UNREACHABLE_TEXT = "Can't reach the server, though this device is online. Keep writing: your changes stay on this device and are sent when the server answers again."

/**
 * @param {import('./connection.js').Refusal} refusal
 * @return {string}
 */
export const refusalText = ({ code, reason }) => REFUSAL_TEXT[code] ??
  `The server refused this document (code ${code}${reason ? `: ${reason}` : ''}).`

/**
 * @typedef {object} PageFacts
 * @property {import('./connection-status.js').ConnectionFacts} connection
 * @property {import('./connection.js').Refusal | null} refusal
 * @property {boolean} deleted the server deleted the document (4410)
 * @property {import('./refused-access.js').RefusalKind | null} [accessRefusal] the server
 *   refused the page's token (4401, 4403), and why
 * @property {number} [pending] the document's unsaved edits
 * @property {boolean} readOnly
 * @property {{ state: string, text: string | null }} save the tracker's status
 */

/**
 * What the indicators show. A save status without text is hidden: nothing is saved once the
 * document is deleted (the panel says what happens to the copy), and nothing of a read-only
 * connection is (its messages are never acked). A refused token says what is not saved: never
 * "saved" while edits wait for a link that works.
 *
 * @param {PageFacts} facts
 * @return {{ connection: 'connected' | 'connecting' | 'reconnecting' | 'unreachable' | 'offline' | 'refused',
 *            save: { state: string, text: string | null },
 *            detail: { text: string, kind: 'error' | 'offline' } | null }}
 */
export const indicatorsOf = ({ connection, refusal, deleted, accessRefusal = null, pending = 0, readOnly, save }) => {
  const state = connectionState(connection)
  return {
    connection: state,
    save: deleted
      ? { state: 'deleted', text: null }
      : accessRefusal !== null
        ? { state: 'refused', text: SAVE_TEXT.refused(pending) }
        : readOnly ? { state: 'readonly', text: null } : save,
    detail: deleted
      ? null // the document-deleted panel says it, with what to do
      : accessRefusal !== null
        ? { text: REFUSED_TEXT[accessRefusal], kind: 'error' }
        : refusal !== null
          ? { text: refusalText(refusal), kind: 'error' }
          : !connection.browserOnline && !connection.socketOpen
              ? { text: OFFLINE_TEXT, kind: 'offline' }
              : state === 'unreachable'
                ? { text: UNREACHABLE_TEXT, kind: 'offline' }
                : null
  }
}

/**
 * Redraws once, in a microtask, however many changes were reported before it runs: y-websocket
 * updates its failure count after emitting its events. It exists before the indicators do, so
 * that everything they show can report changes to it from the start; setupIndicators() gives it
 * the drawing.
 */
export const createRedraw = () => {
  let draw = () => {}
  let queued = false
  return {
    schedule: () => {
      if (queued) return
      queued = true
      queueMicrotask(() => {
        queued = false
        draw()
      })
    },
    /** @param {() => void} fn */
    drawWith: (fn) => { draw = fn }
  }
}

/**
 * @typedef {object} IndicatorElements
 * @property {HTMLElement} connection `connection-status`
 * @property {HTMLElement} save `save-status`
 * @property {HTMLElement} detail `connection-detail`
 */

/**
 * Draws the indicators now and on every redraw.
 *
 * @param {object} opts
 * @param {IndicatorElements} opts.elements
 * @param {ReturnType<typeof createRedraw>} opts.redraw
 * @param {ReturnType<typeof import('./connection.js').watchConnection>} opts.connection
 * @param {import('./save-tracker.js').SaveTracker} opts.tracker
 * @param {() => boolean} opts.readOnly
 * @param {() => boolean} opts.deleted
 * @param {() => import('./refused-access.js').RefusalKind | null} [opts.accessRefusal]
 * @return {{ status: () => { connection: string, save: string, pending: number, sent: number,
 *   acked: number, deleted: boolean, refused: number | null, accessRefusal: string | null } }}
 *   what they show, for tests
 */
export const setupIndicators = ({ elements, redraw, connection, tracker, readOnly, deleted, accessRefusal = () => null }) => {
  /** @return {PageFacts} */
  const facts = () => {
    const connectionFacts = connection.facts()
    return {
      connection: connectionFacts,
      refusal: connection.refusal(),
      deleted: deleted(),
      accessRefusal: accessRefusal(),
      pending: tracker.pending,
      readOnly: readOnly(),
      save: tracker.status(connectionFacts.socketOpen)
    }
  }
  const render = () => {
    const shown = indicatorsOf(facts())
    if (elements.connection.dataset.state !== shown.connection) {
      elements.connection.dataset.state = shown.connection
      elements.connection.textContent = CONNECTION_TEXT[shown.connection]
    }
    const save = elements.save
    if (shown.save.text === null) {
      save.hidden = true
    } else {
      if (save.textContent !== shown.save.text) save.textContent = shown.save.text
      save.hidden = false
    }
    save.dataset.state = shown.save.state
    save.dataset.pending = String(tracker.pending)
    if (shown.save.state === 'local') save.title = SAVE_TEXT.pendingTitle(tracker.pending)
    else if (shown.save.state === 'refused') save.title = SAVE_TEXT.refusedTitle
    else save.removeAttribute('title')
    const detail = elements.detail
    if (shown.detail === null) {
      detail.hidden = true
    } else {
      detail.textContent = shown.detail.text
      detail.dataset.kind = shown.detail.kind
      detail.hidden = false
    }
  }
  redraw.drawWith(render)
  render()

  return {
    status: () => {
      const now = facts()
      const shown = indicatorsOf(now)
      return {
        connection: shown.connection,
        save: shown.save.state,
        pending: tracker.pending,
        sent: tracker.sent,
        acked: tracker.acked,
        deleted: now.deleted,
        /** the close code of the server's final refusal (4401/4403/4404/4410), or null */
        refused: now.refusal === null ? null : now.refusal.code,
        /** why the server refused the token ('expired', 'invalid', 'missing', 'forbidden'), or null */
        accessRefusal: now.accessRefusal ?? null
      }
    }
  }
}

/**
 * The page cannot open a document at all (an address that is not one, a bad name).
 *
 * @param {{ connection: HTMLElement, detail: HTMLElement, editor: HTMLElement }} elements
 * @param {string} message
 */
export const showFatal = (elements, message) => {
  elements.detail.textContent = message
  elements.detail.dataset.kind = 'error'
  elements.detail.hidden = false
  elements.connection.textContent = CONNECTION_TEXT.offline
  elements.connection.dataset.state = 'offline'
  elements.editor.classList.add('editor-unavailable')
}
