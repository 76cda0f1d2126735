// The WebSocket to the Tandem server, as editor.js wires it: where it goes and with what query,
// the handlers for the server's own messages ("saved" acks, the auth message), the facts the
// connection indicator is drawn from (connection-status.js), the browser's online/offline
// events, and the first connect once the IndexedDB copy is loaded.
//
// y-websocket's WebsocketProvider does the rest (retries with backoff, BroadcastChannel).
import * as decoding from 'lib0/decoding'

import { ACK_QUERY_PARAM, CLOSE_CODE, MESSAGE } from './protocol.js'
import { readAuthMessage } from './access.js'

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
 * Listens to the provider (and to the browser's network events) for what the indicators show.
 *
 * @param {object} opts
 * @param {import('y-websocket').WebsocketProvider} opts.provider
 * @param {import('yjs').Doc} opts.ydoc
 * @param {unknown} opts.persistence the IndexedDB copy (the origin of what it loads)
 * @param {import('./save-tracker.js').SaveTracker} opts.tracker
 * @param {(reason: string) => void} opts.onDenied the server sent auth "permission denied"
 * @param {() => void} opts.onDeleted the server closed with 4410: the document was deleted
 * @param {() => void} opts.onChange anything the indicators show may have changed
 * @return {{ facts: () => import('./connection-status.js').ConnectionFacts,
 *            refusal: () => Refusal | null }}
 */
export const watchConnection = ({ provider, ydoc, persistence, tracker, onDenied, onDeleted, onChange }) => {
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
  ydoc.on('update', (_update, origin) => {
    if (origin !== provider && origin !== persistence) tracker.localTransaction()
  })

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
    onChange()
  })
  window.addEventListener('offline', () => {
    // The network is gone: a socket that still looks open is most likely dead, and y-websocket's
    // watchdog would need 30 s to notice. Close it; y-websocket retries on its own backoff.
    if (provider.ws) provider.ws.close()
    onChange()
  })
  window.addEventListener('online', () => {
    // Back online: try now instead of waiting for the backoff timer.
    if (provider.shouldConnect && !provider.wsconnected) {
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
