// Import a Markdown or text file as a new document, from the home page: drop it anywhere on the
// page (the Documents card is highlighted while a file is dragged over the page), or choose it
// with the "Import file…" button (a file input, for the keyboard). Shown to an admin only (the
// import API's role; no token is open mode, where everyone is).
//
// The new document is named after the file: "My Notes.md" becomes "My-Notes" (accents dropped,
// spaces as '-', only the characters a name may hold), inside the token's folder when the token
// is for one; a name the list shows, or one the server says has text already (409), gets -2,
// -3… Each file goes to POST /api/docs/<name>/import (api.js importText). Refused before any
// request, with a sentence saying why: another type than .md, .markdown or .txt, more than
// IMPORT_MAX_BYTES, an empty file, or one that is not UTF-8 text.
import { createApi } from './api.js'
import { documentPowers, freeName } from './document-actions.js'
import { listShows, openLink, rowOf } from './home-actions.js'
import { DOCUMENT_NAME_MAX_LENGTH, documentNameProblem } from './protocol.js'

export const IMPORT_EXTENSIONS = Object.freeze(['.md', '.markdown', '.txt'])
/** The largest file taken: far more text than anyone writes in one document. */
export const IMPORT_MAX_BYTES = 2 * 1024 * 1024
/** How many taken names are tried past the first before giving up. */
const MAX_SUFFIX_TRIES = 20
// room kept for a "-NN" suffix
const SUFFIX_ROOM = 4

/**
 * A valid document name made of a file name.
 *
 * @param {string} filename e.g. "My Notes.md"
 * @param {string} [prefix] the folder it goes in (ends with '/'), '' for none
 * @return {string} e.g. "My-Notes"
 */
export const nameFromFile = (filename, prefix = '') => {
  const stem = filename
    .replace(/\.(md|markdown|txt)$/i, '')
    .normalize('NFKD').replace(/[\u0300-\u036f]/g, '') // é → e
    .replace(/\s+/g, '-')
    .replace(/[^A-Za-z0-9._~-]/g, '')
    .replace(/\.{2,}/g, '.')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, Math.max(1, DOCUMENT_NAME_MAX_LENGTH - prefix.length - SUFFIX_ROOM))
    .replace(/[-.]+$/g, '')
  const name = prefix + (stem || 'imported')
  return documentNameProblem(name) === null ? name : prefix + 'imported'
}

/**
 * Why `file` cannot be imported, or null (its bytes are checked later: decodeText).
 *
 * @param {{ name: string, size: number }} file
 * @return {string | null}
 */
export const fileProblem = (file) => {
  const lower = file.name.toLowerCase()
  if (!IMPORT_EXTENSIONS.some((extension) => lower.endsWith(extension))) {
    return `“${file.name}” is not a Markdown or text file: only .md, .markdown and .txt files can be imported.`
  }
  if (file.size > IMPORT_MAX_BYTES) {
    return `“${file.name}” is too big to import (${(file.size / 1024 / 1024).toFixed(1)} MB; at most ${IMPORT_MAX_BYTES / 1024 / 1024} MB).`
  }
  if (file.size === 0) return `“${file.name}” is empty: there is nothing to import.`
  return null
}

/**
 * The text of a file's bytes: strict UTF-8 (a byte-order mark is dropped), no NUL character.
 *
 * @param {ArrayBuffer | Uint8Array} bytes
 * @param {string} filename for the message
 * @return {string}
 */
export const decodeText = (bytes, filename) => {
  let text
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new Error(`“${filename}” is not UTF-8 text: save it as UTF-8 and import it again.`)
  }
  if (text.includes('\u0000')) throw new Error(`“${filename}” holds binary data, not text.`)
  if (text.trim() === '') throw new Error(`“${filename}” is empty: there is nothing to import.`)
  return text
}

/**
 * @param {DataTransfer | null} transfer
 * @return {boolean} whether the drag carries files
 */
const carriesFiles = (transfer) => Boolean(transfer && [...transfer.types].includes('Files'))

/**
 * @param {object} opts
 * @param {string | null} opts.token the page's `?token=`
 * @param {HTMLElement} opts.zone what is highlighted while a file is dragged over the page
 * @param {HTMLElement} opts.place the button goes before it (the list's Refresh button)
 * @param {HTMLElement} opts.list the document list
 * @param {() => string[]} opts.names the names the list shows
 * @param {() => Promise<unknown>} opts.reload load the list again
 * @param {{ show: (parts: (Node | string)[], kind?: 'info' | 'error') => void }} opts.notice
 * @param {typeof fetch} [opts.fetch]
 * @return {{ importFiles: (files: File[]) => Promise<void> } | null} null when the token cannot import
 */
export const setupImport = ({ token, zone, place, list, names, reload, notice, fetch: fetchImpl }) => {
  const powers = documentPowers(token)
  if (!powers.canCreate) return null

  const input = document.createElement('input')
  input.type = 'file'
  input.accept = [...IMPORT_EXTENSIONS, 'text/markdown', 'text/plain'].join(',')
  input.multiple = true
  input.hidden = true
  input.dataset.testid = 'import-file'
  input.setAttribute('aria-label', 'File to import')
  const button = document.createElement('button')
  button.type = 'button'
  button.className = 'button button-quiet'
  button.dataset.testid = 'import-button'
  button.textContent = 'Import file…'
  button.title = 'Make a new document of a .md or .txt file (or drop the file on this page)'
  place.before(button, input)

  const hint = document.createElement('p')
  hint.className = 'hint drop-hint'
  hint.dataset.testid = 'drop-hint'
  hint.textContent = 'Drop a .md or .txt file on this page to make a new document of it.'
  zone.append(hint)
  zone.dataset.testid = zone.dataset.testid || 'drop-zone'

  /**
   * @param {File} file
   * @param {Set<string>} taken
   * @return {Promise<string>} the new document's name
   */
  const importOne = async (file, taken) => {
    const problem = fileProblem(file)
    if (problem) throw new Error(problem)
    const text = decodeText(await file.arrayBuffer(), file.name)
    const base = nameFromFile(file.name, powers.prefix)
    for (let tries = 0; tries <= MAX_SUFFIX_TRIES; tries++) {
      const name = freeName(base, taken)
      try {
        await createApi({ name, token, ...(fetchImpl ? { fetch: fetchImpl } : {}) }).importText(text)
        taken.add(name)
        return name
      } catch (error) {
        const status = /** @type {{ status?: unknown }} */ (error)?.status
        if (status !== 409) {
          if (status === 401 || status === 403) throw new Error(`Your access link does not allow importing “${file.name}” as “${name}”.`)
          if (status === 413) throw new Error(`“${file.name}” is larger than the server takes.`)
          throw error
        }
        taken.add(name) // it has text already: the next free name
      }
    }
    throw new Error(`Could not find a free name for “${file.name}”: rename the file and try again.`)
  }

  let busy = false
  /** @param {File[]} files */
  const importFiles = async (files) => {
    if (busy || files.length === 0) return
    busy = true
    button.setAttribute('aria-busy', 'true')
    notice.show([files.length === 1 ? `Importing “${files[0].name}”…` : `Importing ${files.length} files…`])
    const taken = new Set(names())
    /** @type {string[]} */
    const made = []
    /** @type {string[]} */
    const failed = []
    for (const file of files) {
      try {
        made.push(await importOne(file, taken))
      } catch (error) {
        failed.push(error instanceof Error ? error.message : String(error))
      }
    }
    /** @type {(Node | string)[]} */
    const parts = []
    if (made.length === 1) parts.push(`Imported “${made[0]}”. `, openLink(made[0], token), ' ')
    else if (made.length > 1) parts.push(`Imported ${made.map((n) => `“${n}”`).join(', ')}. `)
    parts.push(...failed.map((text) => text + ' '))
    notice.show(parts, failed.length > 0 && made.length === 0 ? 'error' : 'info')
    busy = false
    button.removeAttribute('aria-busy')
    if (made.length > 0) {
      reload()
      const last = made[made.length - 1]
      await listShows(list, () => rowOf(list, last) !== null)
    }
  }

  button.addEventListener('click', () => input.click())
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])]
    input.value = '' // the same file can be chosen again
    importFiles(files)
  })

  // the highlight: on while files are dragged over the page (enter/leave pair up per element)
  let depth = 0
  /** @param {boolean} on */
  const highlight = (on) => {
    if (on) zone.dataset.dropActive = 'true'
    else delete zone.dataset.dropActive
  }
  document.addEventListener('dragenter', (event) => {
    if (!carriesFiles(event.dataTransfer)) return
    event.preventDefault()
    depth++
    highlight(true)
  })
  document.addEventListener('dragover', (event) => {
    if (!carriesFiles(event.dataTransfer)) return
    event.preventDefault() // or the browser opens the file instead of dropping it here
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy'
    highlight(true)
  })
  document.addEventListener('dragleave', (event) => {
    if (!carriesFiles(event.dataTransfer)) return
    depth = Math.max(0, depth - 1)
    if (depth === 0) highlight(false)
  })
  document.addEventListener('drop', (event) => {
    if (!carriesFiles(event.dataTransfer)) return
    event.preventDefault()
    depth = 0
    highlight(false)
    importFiles([...(event.dataTransfer?.files ?? [])])
  })

  return { importFiles }
}
