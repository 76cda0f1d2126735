// What this page may do: the role its access token names, and what the server said (pure: no DOM).
//
// The server is the authority (it checks every request and every update); the client only reads
// the token's payload to shape the page: a reader gets a read-only editor, only an admin sees
// Restore enabled. No token means the server runs in open mode, where everyone may do everything.
//
//   role     'open' (no token), 'read', 'write' or 'admin'; a token that cannot be read, or names
//            no known role, counts as 'read' (the server will refuse what it does not allow).
//   denied   the server sent y-protocols' auth "permission denied" on the WebSocket: whatever the
//            token says, this connection's edits are not applied, so the editor is read-only.
import * as decoding from 'lib0/decoding'
import { AUTH_MESSAGE } from './protocol.js'

/** Ranks of the roles; 'open' (no token) allows everything. */
export const ROLE_RANK = Object.freeze({ read: 1, write: 2, admin: 3, open: 3 })

/**
 * The payload of a JWT (its middle part, base64url-encoded JSON), without verifying anything.
 *
 * @param {string | null | undefined} token
 * @return {Record<string, unknown> | null} null when there is none or it cannot be read
 */
export const tokenPayload = (token) => {
  if (typeof token !== 'string') return null
  const parts = token.split('.')
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) return null
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/')
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4)
    const binary = atob(padded)
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
    const payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? payload : null
  } catch {
    return null
  }
}

/**
 * @param {string | null | undefined} token the page's `?token=`
 * @return {'open' | 'read' | 'write' | 'admin'}
 */
export const roleOfToken = (token) => {
  if (!token) return 'open'
  const role = tokenPayload(token)?.role
  return role === 'write' || role === 'admin' || role === 'read' ? role : 'read'
}

/**
 * @typedef {{ role: 'open' | 'read' | 'write' | 'admin', denied: boolean, canEdit: boolean,
 *             canSaveVersion: boolean, canRestore: boolean, readOnly: boolean }} Access
 */

/**
 * What the page offers for a role, once the server may have denied writing.
 *
 * @param {'open' | 'read' | 'write' | 'admin'} role
 * @param {boolean} [denied] the server sent "permission denied"
 * @return {Access}
 */
export const accessFor = (role, denied = false) => {
  const rank = ROLE_RANK[role] ?? ROLE_RANK.read
  const canEdit = rank >= ROLE_RANK.write && !denied
  return {
    role,
    denied,
    canEdit,
    readOnly: !canEdit,
    canSaveVersion: canEdit,
    canRestore: rank >= ROLE_RANK.admin && !denied
  }
}

/**
 * Reads the body of a y-protocols auth message (after its message type).
 *
 * @param {decoding.Decoder} decoder
 * @return {{ denied: boolean, reason: string }}
 */
export const readAuthMessage = (decoder) => {
  const kind = decoding.readVarUint(decoder)
  if (kind !== AUTH_MESSAGE.permissionDenied) return { denied: false, reason: '' }
  let reason = ''
  try {
    reason = decoding.readVarString(decoder)
  } catch {
    // a denial without a readable reason is still a denial
  }
  return { denied: true, reason }
}
