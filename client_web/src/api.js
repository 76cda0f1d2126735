// The editor's side of the HTTP API (README "HTTP API"): exports, versions, diff, restore, and
// import (a new document from a deleted one's local copy).
//
// Every request carries the page's access token as `Authorization: Bearer` when there is one.
// Failures become an ApiError whose message a person can read ("Only an admin can …"), built
// from the status and the server's JSON `{"error": …}`; nothing from the server is ever parsed
// as HTML. No DOM here: the fetch function is passed in, so the unit tests give a fake one.
import { documentApiPath } from './protocol.js'

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} message for a person
   * @param {string} [detail] what the server said, if anything
   */
  constructor (status, message, detail = '') {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.detail = detail
  }
}

/**
 * A readable sentence for a failed request.
 *
 * @param {number} status
 * @param {string} detail the server's `error` text (may be empty)
 * @param {string} [action] what was being done, e.g. 'restore this version'
 * @return {string}
 */
export const apiErrorMessage = (status, detail, action = 'do this') => {
  const said = detail ? ` (the server said: ${detail})` : ''
  switch (status) {
    case 0:
      return `Could not reach the server to ${action}. Check the connection and try again.`
    case 400:
      return `The server did not accept the request to ${action}${said}.`
    case 401:
      return `Your access link is missing a valid token, or it has expired, so you cannot ${action}. Ask for a new link${said}.`
    case 403:
      return `You are not allowed to ${action}${said}.`
    case 404:
      return `Could not ${action}: ${detail || 'the document or version does not exist'}.`
    case 409:
      return `Could not ${action}: it conflicts with the document's current state${said}.`
    default:
      return `Could not ${action}: the server answered ${status}${said}.`
  }
}

/**
 * The file name of a `Content-Disposition: attachment; filename="…"` header.
 *
 * @param {string | null} header
 * @return {string | null}
 */
export const filenameFromDisposition = (header) => {
  if (!header) return null
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header)
  if (star) {
    try {
      return cleanFilename(decodeURIComponent(star[1].trim().replace(/^"|"$/g, '')))
    } catch {
      // fall through to the plain form
    }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(header)
  if (!plain) return null
  return cleanFilename((plain[2] ?? plain[1]).trim())
}

/** @param {string} name */
const cleanFilename = (name) => {
  const base = name.split(/[\\/]/).pop() ?? ''
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  return cleaned && cleaned !== '.' && cleaned !== '..' ? cleaned : null
}

/** Export formats, in menu order. */
export const EXPORT_FORMATS = Object.freeze([
  { format: 'md', label: 'Markdown', extension: 'md', hint: '.md' },
  { format: 'txt', label: 'Plain text', extension: 'txt', hint: '.txt' },
  { format: 'html', label: 'Web page', extension: 'html', hint: '.html' },
  { format: 'json', label: 'JSON', extension: 'json', hint: '.json' },
  { format: 'yjs', label: 'Yjs update', extension: 'yjs', hint: '.yjs' }
])

/**
 * @typedef {{ id: number, number: number, created_at: number, label: string | null, size_bytes: number, auto: boolean }} Version
 *   `number` counts the document's versions (1, 2, …; the server's per-document `number`, else
 *   the id for a server without it): the one people see
 */

/**
 * @param {object} opts
 * @param {string} opts.name the document
 * @param {string | null} [opts.token] the page's access token
 * @param {typeof fetch} [opts.fetch]
 */
export const createApi = ({ name, token = null, fetch: fetchImpl = (...args) => fetch(...args) }) => {
  /**
   * @param {string} suffix
   * @param {object} [opts]
   * @param {string} [opts.method]
   * @param {Record<string, string>} [opts.query]
   * @param {unknown} [opts.json]
   * @param {string} [opts.text] a text body (Markdown), instead of json
   * @param {string} [opts.action] for the error message
   * @return {Promise<Response>} a 2xx response
   */
  const request = async (suffix, { method = 'GET', query, json, text, action } = {}) => {
    let url = documentApiPath(name, suffix)
    if (query) url += '?' + new URLSearchParams(query).toString()
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json, text/plain, */*' }
    if (token) headers.Authorization = `Bearer ${token}`
    /** @type {RequestInit} */
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' }
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json'
      init.body = JSON.stringify(json)
    } else if (text !== undefined) {
      headers['Content-Type'] = 'text/markdown; charset=utf-8'
      init.body = text
    }
    let response
    try {
      response = await fetchImpl(url, init)
    } catch {
      throw new ApiError(0, apiErrorMessage(0, '', action))
    }
    if (!response.ok) {
      let detail = ''
      try {
        const text = await response.text()
        try {
          const body = JSON.parse(text)
          detail = body && typeof body.error === 'string' ? body.error : ''
        } catch {
          detail = text.length <= 200 ? text.trim() : ''
        }
      } catch {
        detail = ''
      }
      throw new ApiError(response.status, apiErrorMessage(response.status, detail, action), detail)
    }
    return response
  }

  return {
    /** @return {Promise<Version[]>} newest first */
    async versions () {
      const response = await request('/versions', { action: 'load the history' })
      const body = await response.json()
      if (!Array.isArray(body)) return []
      return body
        .filter((v) => v && Number.isInteger(v.id))
        .map((v) => ({
          id: v.id,
          number: Number.isInteger(v.number) ? v.number : v.id,
          created_at: typeof v.created_at === 'number' ? v.created_at : 0,
          label: typeof v.label === 'string' && v.label !== '' ? v.label : null,
          size_bytes: typeof v.size_bytes === 'number' ? v.size_bytes : 0,
          auto: v.auto === true
        }))
        .sort((a, b) => b.created_at - a.created_at || b.id - a.id)
    },
    /**
     * @param {string | null} label
     * @return {Promise<{ id: number, number: number }>} the new version's id and number
     */
    async saveVersion (label) {
      const response = await request('/versions', { method: 'POST', json: { label }, action: 'save a version' })
      const body = await response.json()
      return { id: body.id, number: body.number ?? body.id }
    },
    /**
     * @param {number} id
     * @return {Promise<{ restored: number, saved_before: number }>}
     */
    async restore (id) {
      const response = await request(`/versions/${id}/restore`, { method: 'POST', action: `restore version ${id}` })
      return response.json()
    },
    /** @param {number} id @return {Promise<string>} unified diff from version id to now */
    async diffToLive (id) {
      const response = await request(`/versions/${id}/diff/live`, { action: `compare version ${id} with the current text` })
      return response.text()
    },
    /**
     * The diff from version id to now, and who edited between the two (…/diff/live?format=json).
     *
     * @param {number} id
     * @return {Promise<{ diff: string, authors: { client_id: number, author: string | null }[] }>}
     */
    async diffWithAuthors (id) {
      const response = await request(`/versions/${id}/diff/live`, { query: { format: 'json' }, action: `compare version ${id} with the current text` })
      const body = await response.json()
      return {
        diff: typeof body?.diff === 'string' ? body.diff : '',
        authors: Array.isArray(body?.authors) ? body.authors : []
      }
    },
    /**
     * The document's authors map (GET …/authors): who sent each Yjs client id's text; empty for
     * a document the server has not stored yet.
     *
     * @return {Promise<unknown[]>} rows { client_id, author, source, first_at, last_at }
     */
    async authors () {
      try {
        const response = await request('/authors', { action: 'show who wrote what' })
        const body = await response.json()
        return Array.isArray(body?.authors) ? body.authors : []
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return []
        throw error
      }
    },
    /** @param {number} id @return {Promise<string>} */
    async versionText (id) {
      const response = await request('/export', { query: { format: 'txt', version: String(id) }, action: `show version ${id}` })
      return response.text()
    },
    /**
     * Create this document with `text` (POST …/import: admin role; 409 when it already has text).
     *
     * @param {string} text
     * @return {Promise<void>}
     */
    async importText (text) {
      await request('/import', { method: 'POST', text, action: `create the document "${name}"` })
    },
    /**
     * @param {string} format one of EXPORT_FORMATS
     * @return {Promise<{ blob: Blob, filename: string }>}
     */
    async exportFile (format) {
      const response = await request('/export', { query: { format }, action: 'export the document' })
      const blob = await response.blob()
      const known = EXPORT_FORMATS.find((f) => f.format === format)
      const fallback = `${name.split('/').pop() || 'document'}.${known ? known.extension : format}`
      return { blob, filename: filenameFromDisposition(response.headers.get('Content-Disposition')) ?? fallback }
    }
  }
}
