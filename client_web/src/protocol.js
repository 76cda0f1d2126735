// Tandem's wire contract, as seen by the web client.
//
// Every number comes from the repository's shared/protocol.json (bundled by esbuild as a JSON
// import), so the server and this client cannot drift apart: change a value there and both sides
// change with it. Never write one of these numbers as a literal anywhere else in client_web.
import protocol from '../../shared/protocol.json' with { type: 'json' }

/** Message types: 0 sync, 1 awareness, 2 auth, 3 query-awareness, 101 "saved" ack (ours). */
export const MESSAGE = Object.freeze({ ...protocol.messageTypes })

/** Sub-types of an auth message (y-protocols): 0 permission denied (then a varString reason). */
export const AUTH_MESSAGE = Object.freeze({ ...protocol.authMessages })

/** Sub-types of a sync message: step 1, step 2, update. */
export const SYNC_STEP = Object.freeze({ ...protocol.syncSteps })

/** WebSocket close codes the server uses (4400-4499 are final for the y-websocket client). */
export const CLOSE_CODE = Object.freeze({ ...protocol.closeCodes })

/** Query parameter that opts a connection in to "saved" acks. */
export const ACK_QUERY_PARAM = protocol.ackQueryParam

/** Name of the Y.Text that holds the document's text. */
export const CONTENT_TEXT = protocol.contentText

/** Seconds between the server's keepalive messages. */
export const KEEPALIVE_SECONDS = protocol.keepaliveSeconds

export const DOCUMENT_NAME_PATTERN = new RegExp(protocol.documentName.pattern)
export const DOCUMENT_NAME_MAX_LENGTH = protocol.documentName.maxLength

/**
 * Checks a document name against the contract: protocol.json's `documentName.pattern`, and no
 * `..` anywhere, no leading or trailing `/` (the same rule as the server's, in server/names.py).
 *
 * @param {string} name
 * @return {string | null} null when the name is valid, else a message for a person
 */
export const documentNameProblem = (name) => {
  if (name.length === 0) return 'Enter a document name.'
  if (name.length > DOCUMENT_NAME_MAX_LENGTH) {
    return `A document name can have at most ${DOCUMENT_NAME_MAX_LENGTH} characters.`
  }
  if (!DOCUMENT_NAME_PATTERN.test(name)) {
    return 'Use only letters A–Z and a–z, digits, and . _ ~ - / (no spaces).'
  }
  if (name.includes('..')) return 'A document name cannot contain "..".'
  if (name.startsWith('/') || name.endsWith('/')) {
    return 'A document name cannot start or end with "/".'
  }
  return null
}

/**
 * Path of a document's editor page. Each `/`-separated segment is percent-encoded on its own, so
 * the slashes of a name stay slashes and nothing else in it can break out of the path.
 *
 * @param {string} name
 * @return {string}
 */
export const documentPath = (name) =>
  '/d/' + name.split('/').map(encodeURIComponent).join('/')

/**
 * Path of one of a document's HTTP API routes: `/api/docs/<name><suffix>`, each segment of the
 * name percent-encoded on its own (as in documentPath).
 *
 * @param {string} name
 * @param {string} [suffix] e.g. '/export', '/versions/3/restore'
 * @return {string}
 */
export const documentApiPath = (name, suffix = '') =>
  '/api/docs/' + name.split('/').map(encodeURIComponent).join('/') + suffix

/**
 * The document name of an editor page's path (`/d/<name>`), or null when the path is not one.
 *
 * @param {string} pathname
 * @return {string | null}
 */
export const documentNameFromPath = (pathname) => {
  if (!pathname.startsWith('/d/')) return null
  try {
    return decodeURIComponent(pathname.slice(3))
  } catch {
    return null
  }
}
