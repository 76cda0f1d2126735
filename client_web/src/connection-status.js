// The rule behind the "connection-status" indicator (pure: connection.js gathers the facts).
//
//   Connected      the WebSocket is open (even if the browser claims to be offline: a socket to
//                  localhost works without a network, and it is the socket that matters).
//   Access refused the server refused this page's token for good (close code 4401: no, a bad or
//                  an expired token; 4403: a token for other documents); nothing reconnects with
//                  it (the page offers to open it with a new link: refused-access.js).
//   Offline        the socket is not open and
//                    - the browser says it is offline (navigator.onLine === false), or
//                    - the server refused the document for good (close code 4404 bad name, 4410
//                      deleted, any other 4400-4499); y-websocket then stops retrying.
//   Can't reach the server
//                  the socket is not open, the browser says it is online, and
//                  OFFLINE_AFTER_FAILURES connection attempts in a row have failed (with
//                  y-websocket's backoff of 200, 400, 800, 1600 ms that is about 3 s of trying):
//                  the network is up but the server is down or in the way (so not "Offline").
//   Reconnecting…  the socket is not open, but it was open before or an attempt already failed,
//                  and none of the reasons above holds: y-websocket is between attempts or in
//                  one. A successful sync resets the failure count.
//   Connecting…    the very first attempt of this page has not finished yet.
//
// Edits made while not Connected stay in the Y.Doc and in IndexedDB (see save-tracker.js) and go
// to the server as soon as a socket opens; y-websocket keeps retrying even while "Offline".

export const CONNECTION_TEXT = Object.freeze({
  connected: 'Connected',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  unreachable: "Can't reach the server",
  offline: 'Offline',
  refused: 'Access refused'
})

/** Failed attempts in a row after which "Reconnecting…" becomes "Can't reach the server". */
export const OFFLINE_AFTER_FAILURES = 5

/**
 * @typedef {object} ConnectionFacts
 * @property {boolean} socketOpen the provider's WebSocket is open
 * @property {boolean} browserOnline navigator.onLine
 * @property {number} failures connection attempts that failed in a row
 * @property {boolean} refused the server closed with a final (4400-4499) code
 * @property {boolean} [accessRefused] that code refuses the token (4401, 4403)
 * @property {boolean} everOpened a socket of this page has been open at some point
 */

/**
 * @param {ConnectionFacts} facts
 * @return {'connected' | 'connecting' | 'reconnecting' | 'unreachable' | 'offline' | 'refused'}
 */
export const connectionState = ({ socketOpen, browserOnline, failures, refused, accessRefused = false, everOpened }) => {
  if (socketOpen) return 'connected'
  if (accessRefused) return 'refused'
  if (!browserOnline || refused) return 'offline'
  if (failures >= OFFLINE_AFTER_FAILURES) return 'unreachable'
  if (!everOpened && failures === 0) return 'connecting'
  return 'reconnecting'
}
