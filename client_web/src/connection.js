// The WebSocket to the Tandem server, as editor.js wires it: where it goes and with what query,
// the handlers for the server's own messages ("saved" acks, the auth message), the local edits
// the save status counts, the facts the connection indicator is drawn from
// (connection-status.js), the browser's online/offline events, a refusal of the token (4401,
// 4403: no more connecting with it), and the first connect once the IndexedDB copy is loaded.
//
// y-websocket's WebsocketProvider does the rest (retries with backoff, BroadcastChannel). One
// thing it does not do: an update that came from another tab (BroadcastChannel) is never sent on
// this tab's socket. So when the document's list of unsaved edits holds edits this copy has and
// the server does not (a tab closed before its edits were acked), this page sends them itself
// (sendUnsaved).
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'

import { ACK_QUERY_PARAM, CLOSE_CODE, MESSAGE } from './protocol.js'
import { readAuthMessage } from './access.js'
import { docState, editIn, transactionWitness } from './pending-edits.js'

/** Wait at most this long for the IndexedDB copy before connecting anyway. */
export const INDEXEDDB_WAIT_MS = 2000

/**
 * The provider's server URL: `ws(s)://<host>/ws`, with the page's scheme (y-websocket appends
 * `/<document name>`).
 *
 * @param {{ protocol: string, host: string }} location the page's
 * @return {string}
 */
export const socketUrl = (location) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`

/**
 * The connection's query: "saved" acks asked for, and the page's `?token=` passed on.
 *
 * @param {string | null} token
 * @return {Record<string, string>}
 */
export const socketParams = (token) => {
  /** @type {Record<string, string>} */
  const params = { [ACK_QUERY_PARAM]: '1' }
  if (token) params.token = token
  return params
}

/**
 * Whether a close is worth a line in the console: 1000/1001 are normal (going away), 1005/1006
 * carry no code (network loss, a socket that never opened).
 *
 * @param {{ code: number } | null | undefined} event
 */
export const unusualClose = (event) =>
  Boolean(event) && event.code > CLOSE_CODE.goingAway && event.code !== 1005 && event.code !== 1006

/** @typedef {{ code: number, reason: string }} Refusal the server's final (4400-4499) close */

/**
 * Whether a final close refuses the page's token (no, a bad or an expired one: 4401; one that
 * does not cover the document: 4403), as opposed to the document itself (4404, 4410).
 *
 * @param {Refusal | null} refusal
 */
export const refusesToken = (refusal) =>
  refusal !== null && (refusal.code === CLOSE_CODE.unauthorized || refusal.code === CLOSE_CODE.forbidden)

/**
 * An edit lost for good: no copy on this device holds it (its tab closed before IndexedDB had
 * it) and it is older than this, so no other tab is about to pass it on either.
 */
export const LOST_AFTER_MS = 30_000

/** How long an unsaved edit of another tab is left to that tab before this one sends it. */
export const SEND_UNSAVED_AFTER_MS = 5000

/**
 * Listens to the provider (and to the browser's network events) for what the indicators show.
 *
 * @param {object} opts
 * @param {import('y-websocket').WebsocketProvider} opts.provider
 * @param {import('yjs').Doc} opts.ydoc
 * @param {unknown} opts.persistence the IndexedDB copy (the origin of what it loads)
 * @param {Promise<unknown>} opts.loaded the persistence's whenSynced
 * @param {import('./save-tracker.js').SaveTracker} opts.tracker
 * @param {() => boolean} opts.canSend whether this page's edits are accepted (not read-only)
 * @param {(reason: string) => void} opts.onDenied the server sent auth "permission denied"
 * @param {() => void} opts.onDeleted the server closed with 4410: the document was deleted
 * @param {(refusal: Refusal) => void} opts.onRefused the server refused the token (4401, 4403)
 * @param {() => void} opts.onChange anything the indicators show may have changed
 * @return {{ facts: () => import('./connection-status.js').ConnectionFacts,
 *            refusal: () => Refusal | null }}
 */
export const watchConnection = ({
  provider, ydoc, persistence, loaded, tracker, canSend, onDenied, onDeleted, onRefused, onChange
}) => {
  // the "saved" ack: one varUint, the cumulative count of committed update-bearing messages
  provider.messageHandlers[MESSAGE.saved] = (_encoder, decoder) => {
    tracker.ack(decoding.readVarUint(decoder))
  }
  // y-protocols' auth message: "permission denied" means this connection's edits are dropped
  provider.messageHandlers[MESSAGE.auth] = (_encoder, decoder) => {
    const { denied, reason } = readAuthMessage(decoder)
    if (denied) onDenied(reason)
  }

  // Local transactions are everything that did not come from a peer (WebSocket or another tab,
  // both arrive with the provider as origin) or from the IndexedDB copy.
  ydoc.on('afterTransaction', (/** @type {Y.Transaction} */ transaction) => {
    if (transaction.origin === provider || transaction.origin === persistence) return
    const witness = transactionWitness(transaction, ydoc.clientID)
    if (witness !== null) tracker.localTransaction(witness)
  })

  // Once the IndexedDB copy is loaded, the edits it lacks (and so does every tab: they all write
  // to it) are lost, not unsaved.
  const edits = tracker.edits
  loaded.then(() => edits.refresh()).then(() => {
    if (!(/** @type {{ synced?: boolean }} */ (persistence).synced)) return
    const copy = docState(ydoc)
    const now = Date.now()
    edits.settle((edit) => edit.tab !== edits.tab && !edit.legacy && now - edit.at > LOST_AFTER_MS && !editIn(edit, copy))
  })

  // Unsaved edits this copy holds and the server lacks, left so for SEND_UNSAVED_AFTER_MS (their
  // own tab would have had them acked by then: it is closed, or its socket is gone), with nothing
  // of ours in flight: send what the server may lack (once for a given list of such edits: if
  // that did not save them, sending the same again would not either; a new socket's step 2
  // sends everything anyway).
  let lastSent = ''
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null
  const sendUnsaved = () => {
    if (timer !== null) clearTimeout(timer)
    timer = null
    if (!canSend() || !provider.wsconnected || provider.ws === null || !tracker.idle()) return
    const server = tracker.serverState()
    const unsaved = edits.list().filter((edit) => !edit.legacy && !editIn(edit, server))
    if (unsaved.length === 0) return
    const now = Date.now()
    const young = unsaved.filter((edit) => now - edit.at < SEND_UNSAVED_AFTER_MS)
    if (young.length > 0) {
      const next = Math.min(...young.map((edit) => edit.at)) + SEND_UNSAVED_AFTER_MS - now
      timer = setTimeout(sendUnsaved, Math.max(0, next) + 50)
    }
    const due = unsaved.filter((edit) => now - edit.at >= SEND_UNSAVED_AFTER_MS)
    const key = JSON.stringify(due)
    if (due.length === 0 || key === lastSent) return
    lastSent = key
    // the whole copy is looked at once per list of such edits, not on every ack
    const copy = docState(ydoc)
    if (!due.some((edit) => editIn(edit, copy))) return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE.sync)
    syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(ydoc, Y.encodeStateVector(server.sv)))
    provider.ws.send(encoding.toUint8Array(encoder))
  }
  tracker.onSettled(sendUnsaved)

  let everOpened = false
  /** @type {Refusal | null} */
  let refusal = null
  provider.on('status', ({ status }) => {
    if (status === 'connected') everOpened = true
    onChange()
  })
  provider.on('connection-close', (event) => {
    if (unusualClose(event)) {
      console.info(`Tandem: connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`)
    }
    onChange()
  })
  provider.on('connection-error', () => onChange())
  provider.on('sync', () => onChange())
  provider.on('closed', (event) => {
    refusal = event
    if (event.code === CLOSE_CODE.documentDeleted) onDeleted()
    else if (refusesToken(event)) onRefused(event)
    onChange()
  })
  window.addEventListener('offline', () => {
    // The network is gone: a socket that still looks open is most likely dead, and y-websocket's
    // watchdog would need 30 s to notice. Close it; y-websocket retries on its own backoff.
    if (provider.ws) provider.ws.close()
    onChange()
  })
  window.addEventListener('online', () => {
    // Back online: try now instead of waiting for the backoff timer (never again after a final
    // refusal: the token or the document will not change by itself).
    if (refusal === null && provider.shouldConnect && !provider.wsconnected) {
      provider.wsUnsuccessfulReconnects = 0
      if (provider.ws === null) provider.connect()
    }
    onChange()
  })

  return {
    facts: () => ({
      socketOpen: provider.wsconnected,
      browserOnline: navigator.onLine,
      failures: provider.wsUnsuccessfulReconnects,
      refused: refusal !== null,
      accessRefused: refusesToken(refusal),
      everOpened
    }),
    refusal: () => refusal
  }
}

/**
 * Connects once the IndexedDB copy is loaded (or INDEXEDDB_WAIT_MS passed), so what this device
 * kept is part of the first sync.
 *
 * @param {object} opts
 * @param {import('y-websocket').WebsocketProvider} opts.provider created with `connect: false`
 * @param {Promise<unknown>} opts.loaded the persistence's whenSynced
 * @param {() => void} opts.onChange
 * @param {number} [opts.waitMs]
 */
export const connectWhenLoaded = ({ provider, loaded, onChange, waitMs = INDEXEDDB_WAIT_MS }) => {
  Promise.race([
    loaded,
    new Promise((resolve) => setTimeout(resolve, waitMs))
  ]).then(() => {
    provider.connect()
    onChange()
  })
}
