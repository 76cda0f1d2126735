// Images in the text: an image pasted or dropped into the editor is uploaded to the server
// (`POST /api/docs/<name>/files`, the file's bytes as the body, the page's token as
// `Authorization: Bearer`), and a Markdown image `![name](/api/docs/<name>/files/<id>)` goes
// where the cursor was (or where it was dropped) once the server has it. The notice line says
// "Uploading…", then what happened. With no server there is nothing to link to, so nothing is
// inserted: the notice says so.
//
// The link in the text never holds a token (the text is everyone's). For a page opened with
// `?token=`, images of this server shown in the page (the preview) get the page's token added
// to their address (`?token=`, which the server reads like the header), so readers in token
// mode see them too.
//
// The pure parts (which files, the Markdown, the messages, the token on an address) are
// exported for the unit tests.
import * as Y from 'yjs'
import { EditorView } from '@codemirror/view'
import { Prec, StateEffect } from '@codemirror/state'

import { apiErrorMessage } from './api.js'
import { documentApiPath } from './protocol.js'

/** What the server takes (it reads the type from the bytes itself). */
export const IMAGE_TYPES = Object.freeze(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/svg+xml'])
export const OFFLINE_MESSAGE = 'Images need the server: try again when you are back online'
// the address of a file the server serves (ids are 22 URL-safe characters)
const FILE_PATH = /^\/api\/docs\/.+\/files\/[A-Za-z0-9_-]{22}$/
const DROP_CLASS = 'images-drop'

/**
 * The image files of a paste or a drop, or none when it is text: a paste that carries text too
 * (a spreadsheet's cells come with a picture of them) pastes the text.
 *
 * @param {DataTransfer | null} transfer
 * @param {{ paste?: boolean }} [opts]
 * @return {File[]}
 */
export const imagesIn = (transfer, { paste = false } = {}) => {
  if (!transfer) return []
  if (paste && transfer.getData('text/plain').trim() !== '') return []
  return [...transfer.files].filter((file) => IMAGE_TYPES.includes(file.type))
}

/**
 * The alt text of an image from its file name: no extension, nothing that would end the
 * Markdown's brackets or line.
 *
 * @param {string} fileName
 * @return {string}
 */
export const altText = (fileName) => {
  const stem = fileName.replace(/\.[A-Za-z0-9]{1,5}$/, '')
  const clean = stem.replace(/[[\]\\\r\n]+/g, ' ').replace(/\s+/g, ' ').trim()
  return clean || 'image'
}

/** @param {string} fileName @param {string} url @return {string} */
export const imageMarkdown = (fileName, url) => `![${altText(fileName)}](${url})`

/**
 * A readable sentence for a failed upload.
 *
 * @param {number} status HTTP status, 0 when the server could not be reached
 * @param {string} detail the server's `error`
 * @return {string}
 */
export const uploadErrorMessage = (status, detail) => {
  if (status === 0) return OFFLINE_MESSAGE
  if (status === 413) return `This image is too large for the server${detail ? ` (${detail})` : ''}.`
  if (status === 415) return `Only PNG, JPEG, GIF, WebP and SVG images can be added${detail ? ` (the server said: ${detail})` : ''}.`
  return apiErrorMessage(status, detail, 'add an image to this document')
}

/**
 * ``src`` with the page's token when it is one of this server's files and has none yet (what an
 * `<img>` cannot send as a header); any other address as it is.
 *
 * @param {string} src
 * @param {string | null} token
 * @param {string} origin the page's
 * @return {string}
 */
export const withToken = (src, token, origin) => {
  if (!token || !src) return src
  let url
  try {
    url = new URL(src, origin)
  } catch {
    return src
  }
  if (url.origin !== origin || !FILE_PATH.test(url.pathname) || url.searchParams.has('token')) return src
  url.searchParams.set('token', token)
  return url.pathname + url.search
}

/**
 * Upload one image; the address it is served at.
 *
 * @param {object} opts
 * @param {string} opts.name the document
 * @param {string | null} opts.token
 * @param {File} opts.file
 * @param {typeof fetch} [opts.fetch]
 * @return {Promise<string>}
 */
export const uploadImage = async ({ name, token, file, fetch: fetchImpl = (...args) => fetch(...args) }) => {
  /** @type {Record<string, string>} */
  const headers = { 'Content-Type': file.type, Accept: 'application/json' }
  if (token) headers.Authorization = `Bearer ${token}`
  let response
  try {
    response = await fetchImpl(documentApiPath(name, '/files'), {
      method: 'POST', headers, body: file, cache: 'no-store', credentials: 'same-origin'
    })
  } catch {
    throw new Error(OFFLINE_MESSAGE)
  }
  /** @type {any} */
  let body = null
  try {
    body = await response.json()
  } catch {
    body = null
  }
  if (!response.ok) {
    const detail = body && typeof body.error === 'string' ? body.error : ''
    throw new Error(uploadErrorMessage(response.status, detail))
  }
  const url = body && typeof body.url === 'string' ? body.url : ''
  if (!FILE_PATH.test(url)) throw new Error('The server stored the image but did not say where it is.')
  return url
}

/**
 * Paste and drop of images into the editor, and tokens on the page's images.
 *
 * @param {object} opts
 * @param {EditorView} opts.view
 * @param {Y.Text} opts.ytext the text the view edits (its indices are the view's positions)
 * @param {string} opts.name the document
 * @param {string | null} opts.token the page's
 * @param {(text: string, kind?: 'info' | 'error') => void} opts.notify
 * @param {() => boolean} opts.online whether the server is reachable now
 * @param {() => boolean} opts.canEdit
 */
export const setupImages = ({ view, ytext, name, token, notify, online, canEdit }) => {
  /**
   * @param {File[]} files
   * @param {number} at where the links go
   */
  const add = async (files, at) => {
    if (!online()) {
      notify(OFFLINE_MESSAGE, 'error')
      return
    }
    // a position that follows the edits (anyone's) made while the upload runs
    const where = Y.createRelativePositionFromTypeIndex(ytext, at)
    notify(files.length === 1 ? `Uploading ${altText(files[0].name)}…` : `Uploading ${files.length} images…`)
    const links = []
    try {
      for (const file of files) links.push(imageMarkdown(file.name, await uploadImage({ name, token, file })))
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error')
      return
    }
    const absolute = ytext.doc ? Y.createAbsolutePositionFromRelativePosition(where, ytext.doc) : null
    if (!canEdit()) return // turned read-only (or deleted) meanwhile
    const pos = Math.min(absolute ? absolute.index : at, view.state.doc.length)
    const insert = links.join('\n')
    const cursorThere = view.state.selection.main.empty && view.state.selection.main.head === pos
    view.dispatch({
      changes: { from: pos, insert },
      ...(cursorThere ? { selection: { anchor: pos + insert.length } } : {}),
      userEvent: 'input.paste'
    })
    notify(files.length === 1 ? 'Image added.' : `${files.length} images added.`)
  }

  const handlers = EditorView.domEventHandlers({
    paste (event, v) {
      const files = imagesIn(event.clipboardData, { paste: true })
      if (files.length === 0 || !canEdit()) return false
      event.preventDefault()
      void add(files, v.state.selection.main.head)
      return true
    },
    dragover (event) {
      if (!event.dataTransfer?.types.includes('Files')) return false
      view.dom.classList.toggle(DROP_CLASS, canEdit())
      return false
    },
    dragleave () {
      view.dom.classList.remove(DROP_CLASS)
      return false
    },
    drop (event, v) {
      view.dom.classList.remove(DROP_CLASS)
      const files = imagesIn(event.dataTransfer)
      if (files.length === 0) return false
      // never the browser's default: it would open the file in place of the editor
      event.preventDefault()
      if (!canEdit()) return true
      const at = v.posAtCoords({ x: event.clientX, y: event.clientY }) ?? v.state.selection.main.head
      void add(files, at)
      return true
    }
  })
  // before CodeMirror's own handlers, which would insert a dropped file as text
  view.dispatch({ effects: StateEffect.appendConfig.of(Prec.highest(handlers)) })

  if (token) {
    const origin = window.location.origin
    /** @param {Element} img */
    const fix = (img) => {
      const src = img.getAttribute('src') ?? ''
      const next = withToken(src, token, origin)
      if (next !== src) img.setAttribute('src', next)
    }
    /** @param {Node} node */
    const fixAll = (node) => {
      if (!(node instanceof Element)) return
      if (node.tagName === 'IMG') fix(node)
      for (const img of node.querySelectorAll('img[src*="/files/"]')) fix(img)
    }
    const root = document.querySelector('[data-testid="preview"]') ?? document.body
    new MutationObserver((records) => {
      for (const record of records) {
        if (record.type === 'attributes') fixAll(/** @type {Node} */ (record.target))
        for (const node of record.addedNodes) fixAll(node)
      }
    }).observe(root, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] })
    fixAll(root)
  }
}
