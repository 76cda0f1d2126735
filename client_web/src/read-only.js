// Switching the editor page between editing and read-only. The token's role decides at first
// (access.js); the server can only take rights away after that: its auth "permission denied"
// makes the page read-only, and so, for good, does a document deleted on the server (4410) or a
// token it refuses (4401, 4403: refused-access.js).
// A switch reaches everything that shows it: the Read-only badge, `body[data-access]`, the
// editor, this person's presence ("viewing"), the History panel, the indicators.
import { accessFor } from './access.js'

/**
 * What a deleted document (or a refused token) still allows: reading (and the panel's download),
 * whatever the server said before.
 *
 * @param {import('./access.js').Access} access
 * @return {import('./access.js').Access}
 */
export const deletedAccess = (access) =>
  ({ ...access, readOnly: true, canEdit: false, canSaveVersion: false, canRestore: false })

/**
 * The Read-only badge's title: why this page cannot edit.
 *
 * @param {{ deleted: boolean, refused?: string | null, denied: boolean, role: string }} why
 * @return {string}
 */
export const readOnlyReason = ({ deleted, refused = null, denied, role }) => deleted
  ? 'The document was deleted on the server: your copy can be read and downloaded, not edited.'
  : refused === 'expired'
    ? 'Your link has expired: this copy can be read, not edited. Open the page with a new link to go on.'
    : refused !== null
      ? 'The server refused this link: this copy can be read, not edited. Open the page with a new link to go on.'
      : denied && role !== 'read'
        ? 'The server does not accept edits from this link: you can read and follow the document.'
        : 'Your link lets you read and follow this document, not edit it.'

/**
 * Applies `access` at once, then follows what the server says.
 *
 * @param {object} opts
 * @param {'open' | 'read' | 'write' | 'admin'} opts.role the token's
 * @param {import('./access.js').Access} opts.access what the page may do at first
 * @param {HTMLElement} opts.badge the Read-only badge
 * @param {HTMLElement} opts.body gets `data-access` = `read-only` / `edit`
 * @param {{ setReadOnly: (readOnly: boolean) => void }} opts.editor
 * @param {{ setReadOnly: (readOnly: boolean) => void }} opts.presence
 * @param {{ applyAccess: (access: import('./access.js').Access) => void }} opts.history the History panel
 * @param {() => void} opts.onChange
 * @return {{ access: () => import('./access.js').Access, deny: (reason: string) => void,
 *            markDeleted: () => void, refuse: (kind: string) => void }}
 */
export const setupReadOnly = ({ role, access, badge, body, editor, presence, history, onChange }) => {
  let deleted = false
  /** @type {string | null} why the server refused the token, once it did */
  let refused = null

  /** @param {import('./access.js').Access} next */
  const set = (next) => {
    const wasReadOnly = access.readOnly
    // a deleted document, or a refused token, stays read-only whatever the server said before
    if (deleted || refused !== null) next = deletedAccess(next)
    access = next
    body.dataset.access = next.readOnly ? 'read-only' : 'edit'
    badge.hidden = !next.readOnly
    badge.title = readOnlyReason({ deleted, refused, denied: next.denied, role })
    if (next.readOnly !== wasReadOnly) {
      editor.setReadOnly(next.readOnly)
      presence.setReadOnly(next.readOnly)
    }
    history.applyAccess(next)
    onChange()
  }
  set(access)

  return {
    access: () => access,
    /** The server sent auth "permission denied": this connection's edits are dropped. */
    deny (reason) {
      if (access.denied) return
      console.info(`Tandem: the server does not accept edits from this page${reason ? ` (${reason})` : ''}`)
      set(accessFor(role, true))
    },
    /** The server deleted the document: read-only for good. */
    markDeleted () {
      deleted = true
      set(access)
    },
    /** The server refused the token (4401, 4403): read-only for good, on this page. */
    refuse (kind) {
      refused = kind
      set(access)
    }
  }
}
