// What the editor offers once the server says the document was deleted (close code 4410,
// protocol.json closeCodes.documentDeleted): the server keeps a tombstone, refuses this copy for
// good and stores nothing of it, so the text in this tab (and in this browser's IndexedDB) is the
// only one left. The panel `document-deleted` says so and offers:
// - Download my copy: the local text as a .md file;
// - Save as a new document: a new name (the document-name rule of protocol.js), then
//   POST /api/docs/<new>/import with the text (admin role when the server has an auth secret),
//   then the editor of the new document;
// - Discard my copy: after a confirmation, delete the IndexedDB copy and the unsaved counter,
//   then reload: the page then opens whatever the server has under the name now.
import { createApi } from './api.js'
import { documentNameProblem, documentPath } from './protocol.js'

export const DELETED_MESSAGE = 'This document was deleted on the server. Your copy is kept on this device only: ' +
  'it is no longer saved or shared, and the editor is read-only. Download it, save it as a new document, or discard it.'

/**
 * The file name for a download of the local copy: the last segment of the name, as Markdown.
 *
 * @param {string} name
 * @return {string}
 */
export const copyFilename = (name) => {
  const base = name.split('/').pop() || 'document'
  return /\.(md|markdown)$/i.test(base) ? base : `${base}.md`
}

/**
 * Why `candidate` cannot be the new document's name, or null.
 *
 * @param {string} candidate
 * @param {string} current the deleted document's name
 * @return {string | null}
 */
export const newNameProblem = (candidate, current) => {
  if (candidate === current) return 'Choose another name: this one belongs to the deleted document.'
  return documentNameProblem(candidate)
}

/**
 * A sentence for a failed import.
 *
 * @param {unknown} error an ApiError (status, message) or anything else
 * @param {string} newName
 * @return {string}
 */
export const importErrorMessage = (error, newName) => {
  const status = /** @type {{ status?: unknown }} */ (error)?.status
  const keep = ' Your copy is still here: you can download it.'
  if (status === 409) return `A document named "${newName}" already has text. Choose another name.${keep}`
  if (status === 401 || status === 403) {
    return `Only an admin can create documents on this server, and your link does not allow it.${keep}`
  }
  return (error instanceof Error ? error.message : String(error)) + keep
}

/**
 * Delete an IndexedDB database; resolves once it is gone (other tabs that hold it open close
 * it on the version change: lib0's indexeddb does).
 *
 * @param {string} dbName
 * @return {Promise<void>}
 */
export const deleteDatabase = (dbName) => new Promise((resolve, reject) => {
  const request = window.indexedDB.deleteDatabase(dbName)
  request.onsuccess = () => resolve()
  request.onerror = () => reject(request.error)
})

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`editor.html lacks #${id}`)
  return element
}

/**
 * @param {object} opts
 * @param {string} opts.name the deleted document
 * @param {string | null} opts.token the page's access token (sent along to the new document)
 * @param {() => string} opts.text the local copy's text
 * @param {() => Promise<void>} opts.discard forget the local copy (IndexedDB, unsaved counter)
 * @param {(url: string) => void} [opts.navigate]
 * @param {typeof fetch} [opts.fetch]
 */
export const setupDeletedPanel = ({
  name, token, text, discard,
  navigate = (url) => window.location.assign(url),
  fetch: fetchImpl
}) => {
  const panel = $('document-deleted')
  const message = $('deleted-message')
  const downloadButton = /** @type {HTMLButtonElement} */ ($('deleted-download'))
  const saveAsButton = /** @type {HTMLButtonElement} */ ($('deleted-save-as'))
  const discardButton = /** @type {HTMLButtonElement} */ ($('deleted-discard'))
  const form = /** @type {HTMLFormElement} */ ($('deleted-save-form'))
  const input = /** @type {HTMLInputElement} */ ($('deleted-new-name'))
  const saveConfirm = /** @type {HTMLButtonElement} */ ($('deleted-save-confirm'))
  const saveCancel = $('deleted-save-cancel')
  const confirmation = $('deleted-discard-confirmation')
  const discardConfirm = /** @type {HTMLButtonElement} */ ($('deleted-discard-confirm'))
  const discardCancel = $('deleted-discard-cancel')
  const errorElement = $('deleted-error')

  /** @param {string} [text] */
  const showError = (text) => {
    errorElement.textContent = text ?? ''
    errorElement.hidden = !text
  }

  /** @param {boolean} open */
  const setFormOpen = (open) => {
    form.hidden = !open
    saveAsButton.setAttribute('aria-expanded', String(open))
    if (open) {
      setConfirmationOpen(false)
      if (!input.value) input.value = `${name}-copy`.slice(0, 200)
      input.focus()
      input.select()
    }
  }
  /** @param {boolean} open */
  function setConfirmationOpen (open) {
    confirmation.hidden = !open
    discardButton.setAttribute('aria-expanded', String(open))
    if (open) {
      setFormOpen(false)
      discardCancel.focus()
    }
  }

  downloadButton.addEventListener('click', () => {
    const blob = new Blob([text()], { type: 'text/markdown;charset=utf-8' })
    const url = URL.createObjectURL(blob)
    const link = document.createElement('a')
    link.href = url
    link.download = copyFilename(name)
    link.hidden = true
    document.body.append(link)
    link.click()
    link.remove()
    window.setTimeout(() => URL.revokeObjectURL(url), 60_000)
  })

  saveAsButton.addEventListener('click', () => setFormOpen(form.hidden))
  saveCancel.addEventListener('click', () => {
    setFormOpen(false)
    saveAsButton.focus()
  })
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault()
      setFormOpen(false)
      saveAsButton.focus()
    }
  })
  input.addEventListener('input', () => {
    input.removeAttribute('aria-invalid')
    showError()
  })
  let saving = false
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    if (saving) return
    const newName = input.value.trim()
    const problem = newNameProblem(newName, name)
    if (problem !== null) {
      input.setAttribute('aria-invalid', 'true')
      showError(problem)
      input.focus()
      return
    }
    saving = true
    saveConfirm.disabled = true
    saveConfirm.setAttribute('aria-busy', 'true')
    showError()
    try {
      await createApi({ name: newName, token, ...(fetchImpl ? { fetch: fetchImpl } : {}) }).importText(text())
      navigate(documentPath(newName) + (token ? `?token=${encodeURIComponent(token)}` : ''))
    } catch (error) {
      showError(importErrorMessage(error, newName))
    } finally {
      saving = false
      saveConfirm.disabled = false
      saveConfirm.removeAttribute('aria-busy')
    }
  })

  discardButton.addEventListener('click', () => setConfirmationOpen(confirmation.hidden))
  discardCancel.addEventListener('click', () => {
    setConfirmationOpen(false)
    discardButton.focus()
  })
  discardConfirm.addEventListener('click', async () => {
    discardConfirm.disabled = true
    try {
      await discard()
      window.location.reload()
    } catch (error) {
      discardConfirm.disabled = false
      showError(`Could not discard the copy on this device: ${error instanceof Error ? error.message : String(error)}`)
    }
  })

  return {
    show () {
      if (!panel.hidden) return
      message.textContent = DELETED_MESSAGE
      panel.hidden = false
    },
    get shown () { return !panel.hidden }
  }
}

/**
 * What the editor page does once the server says the document was deleted (close code 4410):
 * stop syncing, turn read-only for good, disable Export and History, show the panel.
 *
 * @param {object} opts
 * @param {string} opts.name
 * @param {string | null} opts.token
 * @param {() => string} opts.text the local copy's text
 * @param {() => Promise<void>} opts.discard forget the local copy (IndexedDB, unsaved counter)
 * @param {{ disconnect: () => void }} opts.provider
 * @param {{ isOpen: () => boolean, close: () => void }} opts.history the History panel
 * @param {HTMLButtonElement[]} opts.buttons what the server can no longer answer (Export, History)
 * @param {{ markDeleted: () => void }} opts.readOnly
 * @param {() => void} opts.onChange
 * @return {{ isDeleted: () => boolean, markDeleted: () => void }}
 */
export const setupDeletedDocument = ({ name, token, text, discard, provider, history, buttons, readOnly, onChange }) => {
  const panel = setupDeletedPanel({ name, token, text, discard })
  let deleted = false
  return {
    isDeleted: () => deleted,
    markDeleted () {
      if (deleted) return
      deleted = true
      // no reconnecting (y-websocket already stopped on the final close; this also covers the
      // browser's online event) and no more syncing with this browser's other tabs
      provider.disconnect()
      console.info('Tandem: the document was deleted on the server; this copy stays on this device')
      if (history.isOpen()) history.close()
      for (const button of buttons) {
        button.disabled = true
        button.title = 'The document was deleted on the server'
      }
      readOnly.markDeleted()
      panel.show()
      onChange()
    }
  }
}
