// Exports made from this device's copy of the document, for when the server cannot be reached:
// the text is all here (the Y.Doc, kept in IndexedDB), so Markdown, plain text, the web page
// and the Yjs update need no server. JSON is left to the server (it holds the version and the
// time of the last edit). Pure: the text and the renderer come in as parameters.

/** The formats this device can make on its own. */
export const LOCAL_FORMATS = Object.freeze(['md', 'txt', 'html', 'yjs'])

/**
 * The server's file name for an export (server/exports.py safe_filename).
 *
 * @param {string} name the document
 * @param {string} extension
 */
export const exportFilename = (name, extension) => {
  const stem = name.replace(/\//g, '_').replace(/^\.+|\.+$/g, '') || 'document'
  return `${stem}.${extension}`
}

/** @param {string} text */
export const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * A standalone web page of the document: the preview's rendering when the page has one
 * (`window.tandem.renderMarkdown`, feature-detected), else the text itself, escaped.
 *
 * @param {string} name
 * @param {string} text
 * @param {((markdown: string) => string) | undefined} render
 */
export const htmlPage = (name, text, render) => {
  let body
  try {
    body = typeof render === 'function' ? render(text) : null
  } catch {
    body = null
  }
  const content = typeof body === 'string' ? body : `<pre>${escapeHtml(text)}</pre>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data: https:">
<title>${escapeHtml(name)}</title>
<style>body{max-width:46rem;margin:2rem auto;padding:0 1rem;font:16px/1.6 system-ui,sans-serif}pre{white-space:pre-wrap;overflow-wrap:anywhere;font:14px/1.5 ui-monospace,monospace}</style>
</head>
<body>
${content}
</body>
</html>
`
}

/**
 * @param {object} opts
 * @param {string} opts.format one of LOCAL_FORMATS
 * @param {string} opts.name the document
 * @param {string} opts.text the local text
 * @param {() => Uint8Array} opts.update the local Y.Doc as one update
 * @param {((markdown: string) => string) | undefined} [opts.render]
 * @return {{ blob: Blob, filename: string } | null} null for a format that needs the server
 */
export const localExport = ({ format, name, text, update, render }) => {
  switch (format) {
    case 'md': return { blob: new Blob([text], { type: 'text/markdown;charset=utf-8' }), filename: exportFilename(name, 'md') }
    case 'txt': return { blob: new Blob([text], { type: 'text/plain;charset=utf-8' }), filename: exportFilename(name, 'txt') }
    case 'html': return { blob: new Blob([htmlPage(name, text, render)], { type: 'text/html;charset=utf-8' }), filename: exportFilename(name, 'html') }
    case 'yjs': return { blob: new Blob([update()], { type: 'application/octet-stream' }), filename: exportFilename(name, 'yjs') }
    default: return null
  }
}
