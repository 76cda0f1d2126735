// Tandem's Markdown dialect, GitHub-flavoured: tables, strikethrough, task lists, linkify,
// fenced code with highlighting, heading ids. server/markdown_dialect.py is its twin for the
// HTML export, and tests/test_markdown_dialect.py checks both give the same HTML structure, so
// any change here is made there too. Pure (no DOM): Node runs it for that test.
//
// Raw HTML is text (html: false); links and images only take http(s), mailto (links) and
// relative addresses. The preview still sanitizes the result (preview.js): this is the first
// wall, not the only one.
import MarkdownIt from 'markdown-it'
import taskLists from 'markdown-it-task-lists'
import hljs from 'highlight.js/lib/core'
import bash from 'highlight.js/lib/languages/bash'
import c from 'highlight.js/lib/languages/c'
import cpp from 'highlight.js/lib/languages/cpp'
import css from 'highlight.js/lib/languages/css'
import diff from 'highlight.js/lib/languages/diff'
import go from 'highlight.js/lib/languages/go'
import java from 'highlight.js/lib/languages/java'
import javascript from 'highlight.js/lib/languages/javascript'
import json from 'highlight.js/lib/languages/json'
import markdown from 'highlight.js/lib/languages/markdown'
import python from 'highlight.js/lib/languages/python'
import rust from 'highlight.js/lib/languages/rust'
import sql from 'highlight.js/lib/languages/sql'
import typescript from 'highlight.js/lib/languages/typescript'
import xml from 'highlight.js/lib/languages/xml'
import yaml from 'highlight.js/lib/languages/yaml'

// A few common languages keep the bundle small; other fences are plain `language-x` code.
const LANGUAGES = { bash, c, cpp, css, diff, go, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml }
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language)

/** The options both renderers use (server/markdown_dialect.py OPTIONS). */
export const OPTIONS = Object.freeze({
  html: false,
  linkify: true,
  typographer: false,
  breaks: false,
  langPrefix: 'language-'
})

const SCHEME = /^([a-z][a-z0-9+.-]*):/i
const LINK_SCHEMES = new Set(['http', 'https', 'mailto'])

/**
 * Whether a (normalized) link address may be used: http(s), mailto, or no scheme at all
 * (relative, #anchor). Control characters and spaces arrive percent-encoded, so a scheme
 * cannot hide behind them.
 *
 * @param {string} url
 */
export const isSafeLink = (url) => {
  const scheme = SCHEME.exec(url.trim())
  return scheme === null || LINK_SCHEMES.has(scheme[1].toLowerCase())
}

/** Absolute http(s) or protocol-relative: opens in a new tab. @param {string} href */
export const isExternal = (href) => /^(https?:)?\/\//i.test(href)

// what GitHub keeps in a heading's slug: letters, marks, numbers, connector punctuation,
// spaces (which become hyphens) and hyphens
const NOT_IN_SLUG = /[^\p{L}\p{M}\p{N}\p{Pc} -]/gu

/** GitHub's slug of a heading's text (before making it unique). @param {string} text */
export const slugify = (text) => text.toLowerCase().replace(NOT_IN_SLUG, '').replace(/ /g, '-')

/**
 * github-slugger's rule for repeats: "a", "a-1", "a-2"… A heading with no slug characters
 * at all is "section".
 *
 * @param {string} text
 * @param {Map<string, number>} seen
 */
export const uniqueSlug = (text, seen) => {
  const base = slugify(text) || 'section'
  let slug = base
  while (seen.has(slug)) {
    const count = (seen.get(base) ?? 0) + 1
    seen.set(base, count)
    slug = `${base}-${count}`
  }
  seen.set(slug, 0)
  return slug
}

/**
 * The text a heading shows (its DOM textContent), from its inline tokens.
 *
 * @param {import('markdown-it/lib/token.mjs').default[]} children
 * @return {string}
 */
const inlineText = (children) => children.map((child) => {
  if (child.type === 'text' || child.type === 'code_inline') return child.content
  if (child.type === 'softbreak' || child.type === 'hardbreak') return '\n'
  if (child.type === 'image') return inlineText(child.children ?? [])
  return ''
}).join('')

/** Every heading gets a unique id; env.headings lists them for the table of contents. */
const headingIds = (/** @type {MarkdownIt} */ md) => {
  md.core.ruler.push('heading_ids', (state) => {
    /** @type {Map<string, number>} */
    const seen = new Map()
    /** @type {{ level: number, text: string, id: string, line: number }[]} */
    const headings = []
    const tokens = state.tokens
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]
      if (token.type !== 'heading_open') continue
      const text = inlineText(tokens[i + 1].children ?? [])
      const id = uniqueSlug(text, seen)
      token.attrSet('id', id)
      headings.push({ level: Number(token.tag.slice(1)), text: text.replace(/\s+/g, ' ').trim(), id, line: (token.map?.[0] ?? 0) + 1 })
    }
    state.env.headings = headings
  })
}

/** rel on every link (no opener, no referrer); external ones open in a new tab. */
const linkAttributes = (/** @type {MarkdownIt} */ md) => {
  md.renderer.rules.link_open = (tokens, idx, options, _env, self) => {
    const token = tokens[idx]
    if (isExternal(token.attrGet('href') ?? '')) token.attrSet('target', '_blank')
    token.attrSet('rel', 'noopener noreferrer')
    return self.renderToken(tokens, idx, options)
  }
}

/**
 * data-line-offset on the blocks inside a top-level block (list items, table rows, quoted
 * paragraphs…): their first source line, counted from the top-level block's first line. Relative,
 * so a block's HTML stays the same when lines are added above it and the preview keeps its
 * element; the preview puts the absolute data-source-line on each top-level element itself.
 */
const lineOffsets = (/** @type {MarkdownIt} */ md) => {
  md.core.ruler.push('line_offsets', (state) => {
    let blockStart = 0
    for (const token of state.tokens) {
      if (token.map === null || token.nesting === -1 || token.type === 'inline' || token.hidden) continue
      if (token.level === 0) blockStart = token.map[0]
      else token.attrSet('data-line-offset', String(token.map[0] - blockStart))
    }
  })
}

// Highlighting is the slowest part of rendering a big document, and most fences are the same
// from one render to the next.
const HIGHLIGHT_CACHE_LIMIT = 2000
/** @type {Map<string, string>} */
const highlightCache = new Map()

/** @param {string} code @param {string} lang */
const highlight = (code, lang) => {
  const language = lang.toLowerCase()
  if (!language || !hljs.getLanguage(language)) return '' // markdown-it escapes it
  const key = `${language}\n${code}`
  const cached = highlightCache.get(key)
  if (cached !== undefined) return cached
  let html = ''
  try {
    html = hljs.highlight(code, { language, ignoreIllegals: true }).value
  } catch {
    return ''
  }
  if (highlightCache.size >= HIGHLIGHT_CACHE_LIMIT) highlightCache.clear()
  highlightCache.set(key, html)
  return html
}

/**
 * A renderer of the dialect.
 *
 * @param {{ lineOffsets?: boolean, highlight?: boolean }} [opts] lineOffsets: the preview's
 *   data-line-offset attributes; highlight: highlight.js spans in known fences (class names only)
 */
export const createMarkdown = ({ lineOffsets: withLines = false, highlight: withHighlight = true } = {}) => {
  const md = new MarkdownIt('default', { ...OPTIONS, highlight: withHighlight ? highlight : null })
  md.validateLink = isSafeLink
  md.use(taskLists) // disabled checkboxes: the source is where a task is ticked
  md.use(headingIds)
  md.use(linkAttributes)
  if (withLines) md.use(lineOffsets)
  return md
}

/**
 * @typedef {{ level: number, text: string, id: string, line: number }} Heading
 * @param {MarkdownIt} md from createMarkdown
 * @param {string} text
 * @return {{ html: string, headings: Heading[] }}
 */
export const renderMarkdown = (md, text) => {
  /** @type {{ headings?: Heading[] }} */
  const env = {}
  const html = md.render(text, env)
  return { html, headings: env.headings ?? [] }
}

/**
 * The document as top-level blocks, each rendered on its own (one element each), for the
 * preview's incremental updates.
 *
 * @param {MarkdownIt} md from createMarkdown({ lineOffsets: true })
 * @param {string} text
 * @return {{ blocks: string[], lines: Int32Array, headings: Heading[] }} lines: each block's
 *   first source line (1-based)
 */
export const renderBlocks = (md, text) => {
  /** @type {{ headings?: Heading[] }} */
  const env = {}
  const tokens = md.parse(text, env)
  /** @type {string[]} */
  const blocks = []
  /** @type {number[]} */
  const lines = []
  let first = 0
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]
    if (token.level !== 0) continue
    if (token.nesting === 1) {
      first = i
      continue
    }
    const start = token.nesting === 0 ? i : first
    blocks.push(md.renderer.render(tokens.slice(start, i + 1), md.options, env))
    const map = tokens[start].map
    lines.push(map ? map[0] + 1 : (lines.at(-1) ?? 1))
  }
  return { blocks, lines: Int32Array.from(lines), headings: env.headings ?? [] }
}
