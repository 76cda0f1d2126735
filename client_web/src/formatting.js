// Markdown formatting as CodeMirror commands: inline marks (bold, italic, strikethrough, code,
// link) and line formats (headings, bulleted/numbered/task lists, quotes). Each command toggles
// (run again, it removes what it added), works on every selection range, and is one transaction,
// so one undo step. Marks are found in the Markdown syntax tree, so a caret anywhere inside
// **bold** unbolds it. The toolbar (format-toolbar.js) and the keymap below run the same commands.
import { EditorSelection } from '@codemirror/state'
import { ensureSyntaxTree, syntaxTree } from '@codemirror/language'

/** @typedef {import('@codemirror/state').EditorState} EditorState */
/** @typedef {import('@codemirror/state').SelectionRange} SelectionRange */
/** @typedef {import('@codemirror/state').ChangeSpec} ChangeSpec */
/** @typedef {{ state: EditorState, dispatch: (tr: import('@codemirror/state').TransactionSpec) => void }} Target */
/** @typedef {(target: Target) => boolean} Command */

/**
 * The inline marks: what is inserted, and the syntax node (lezer-markdown, GFM) that means it.
 *
 * @type {Readonly<Record<string, { insert: string, node: string }>>}
 */
export const INLINE = Object.freeze({
  bold: { insert: '**', node: 'StrongEmphasis' },
  // `_` rather than `*`: no clash with bold's stars when the two are toggled on the same text
  italic: { insert: '_', node: 'Emphasis' },
  strikethrough: { insert: '~~', node: 'Strikethrough' },
  code: { insert: '`', node: 'InlineCode' }
})

/** Mark characters of each node type (the first and last of them delimit the span). */
const MARK_NODES = new Set(['EmphasisMark', 'StrikethroughMark', 'CodeMark', 'LinkMark'])

/** @param {EditorState} state @param {number} upto */
const treeOf = (state, upto) => ensureSyntaxTree(state, upto, 100) ?? syntaxTree(state)

/**
 * The innermost node named `name` that contains [from, to].
 *
 * @param {EditorState} state
 * @param {number} from
 * @param {number} to
 * @param {string} name
 * @return {import('@lezer/common').SyntaxNode | null}
 */
const enclosing = (state, from, to, name) => {
  const tree = treeOf(state, to)
  for (const side of [1, -1]) {
    for (let node = tree.resolveInner(from, side); node; node = node.parent) {
      if (node.name === name && node.from <= from && node.to >= to) return node
    }
  }
  return null
}

/**
 * The opening and closing mark of a span node (`**`, `~~`, a backtick, `[` … `]`).
 *
 * @param {import('@lezer/common').SyntaxNode} node
 * @return {{ open: { from: number, to: number }, close: { from: number, to: number } } | null}
 */
const marksOf = (node) => {
  const marks = []
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (MARK_NODES.has(child.name)) marks.push({ from: child.from, to: child.to })
  }
  return marks.length >= 2 ? { open: marks[0], close: marks[marks.length - 1] } : null
}

/** @param {SelectionRange} range @param {number} from @param {number} to */
const sameDirection = (range, from, to) =>
  range.anchor > range.head ? EditorSelection.range(to, from) : EditorSelection.range(from, to)

/**
 * How many of `char` stand right before `pos` (direction -1) or right after it (1).
 *
 * @param {string} text
 * @param {number} pos
 * @param {string} char
 * @param {1 | -1} direction
 */
const runAt = (text, pos, char, direction) => {
  let n = 0
  if (direction < 0) while (pos - n - 1 >= 0 && text[pos - n - 1] === char) n++
  else while (pos + n < text.length && text[pos + n] === char) n++
  return n
}

/**
 * Whether a run of `run` mark characters holds the mark `insert` (a run of 3 stars is bold and
 * italic at once).
 *
 * @param {number} run
 * @param {string} insert
 */
const runHolds = (run, insert) => {
  if (insert === '**') return run === 2 || run === 3
  if (insert === '_') return run === 1 || run === 3
  return run === insert.length
}

/**
 * One range of an inline toggle: unwrap the enclosing span of that kind, else an empty pair
 * around the caret, else wrap the selection (without its outer spaces: `** word**` is no bold).
 *
 * @param {EditorState} state
 * @param {SelectionRange} range
 * @param {{ insert: string, node: string }} mark
 * @return {{ changes: ChangeSpec[], range: SelectionRange }}
 */
const toggleInlineRange = (state, range, mark) => {
  const { from, to } = range
  const node = enclosing(state, from, to, mark.node)
  const marks = node && marksOf(node)
  if (marks) {
    const specs = [{ from: marks.open.from, to: marks.open.to }, { from: marks.close.from, to: marks.close.to }]
    const changes = state.changes(specs)
    return {
      changes: specs,
      range: sameDirection(range, changes.mapPos(range.from, 1), changes.mapPos(range.to, -1))
    }
  }
  const line = state.doc.lineAt(from)
  const char = mark.insert[0]
  const size = mark.insert.length
  if (range.empty) {
    const before = runAt(line.text, from - line.from, char, -1)
    const after = runAt(line.text, from - line.from, char, 1)
    if (runHolds(before, mark.insert) && runHolds(after, mark.insert)) {
      // the empty pair this command just inserted
      return {
        changes: [{ from: from - size, to: from + size }],
        range: EditorSelection.cursor(from - size)
      }
    }
    return { changes: [{ from, insert: mark.insert + mark.insert }], range: EditorSelection.cursor(from + size) }
  }
  const text = state.sliceDoc(from, to)
  const start = from + (text.length - text.trimStart().length)
  const end = to - (text.length - text.trimEnd().length)
  if (start >= end) return { changes: [], range }
  return {
    changes: [{ from: start, insert: mark.insert }, { from: end, insert: mark.insert }],
    range: sameDirection(range, start + size, end + size)
  }
}

/**
 * The pieces of a range, one per line (inline marks do not cross a line in Markdown).
 *
 * @param {EditorState} state
 * @param {SelectionRange} range
 * @return {SelectionRange[]}
 */
const linePieces = (state, range) => {
  const first = state.doc.lineAt(range.from)
  const last = state.doc.lineAt(range.to)
  if (first.number === last.number) return [range]
  const pieces = []
  for (let n = first.number; n <= last.number; n++) {
    const line = state.doc.line(n)
    const from = Math.max(line.from, range.from)
    const to = Math.min(line.to, range.to)
    if (state.sliceDoc(from, to).trim() !== '') pieces.push(EditorSelection.range(from, to))
  }
  return pieces
}

/**
 * @param {{ insert: string, node: string }} mark
 * @return {Command}
 */
export const toggleInline = (mark) => ({ state, dispatch }) => {
  if (state.readOnly) return false
  const update = state.changeByRange((range) => {
    const pieces = linePieces(state, range)
    if (pieces.length === 1 && pieces[0] === range) return toggleInlineRange(state, range, mark)
    // several lines: all marked -> unmark them all, else mark the ones that are not
    const marked = pieces.map((piece) => enclosing(state, piece.from, piece.to, mark.node) !== null)
    const unmark = marked.every(Boolean)
    /** @type {ChangeSpec[]} */
    const changes = []
    pieces.forEach((piece, i) => {
      if (marked[i] === unmark) changes.push(...toggleInlineRange(state, piece, mark).changes)
    })
    const set = state.changes(changes)
    return { changes, range: sameDirection(range, set.mapPos(range.from, -1), set.mapPos(range.to, 1)) }
  })
  dispatch(state.update(update, { scrollIntoView: true, userEvent: 'input.format' }))
  return true
}

export const toggleBold = toggleInline(INLINE.bold)
export const toggleItalic = toggleInline(INLINE.italic)
export const toggleStrikethrough = toggleInline(INLINE.strikethrough)
export const toggleCode = toggleInline(INLINE.code)

/** The placeholder a new link's address starts as (selected, to be typed over). */
export const URL_PLACEHOLDER = 'url'

/**
 * Link: inside a link, back to its text; else `[selection](url)` with `url` selected, or, for a
 * selected address, `[](address)` with the caret where the text goes.
 *
 * @type {Command}
 */
export const toggleLink = ({ state, dispatch }) => {
  if (state.readOnly) return false
  const update = state.changeByRange((range) => {
    const node = enclosing(state, range.from, range.to, 'Link')
    const marks = node ? node.getChildren('LinkMark') : []
    if (node && marks.length >= 2) {
      // [text](address): the first two LinkMarks hold the text
      const text = state.sliceDoc(marks[0].to, marks[1].from)
      return {
        changes: [{ from: node.from, to: node.to, insert: text }],
        range: EditorSelection.range(node.from, node.from + text.length)
      }
    }
    const raw = state.sliceDoc(range.from, range.to)
    const text = raw.trim()
    const from = range.from + (raw.length - raw.trimStart().length)
    if (/^(https?:\/\/|mailto:)\S+$/i.test(text)) {
      return { changes: [{ from, to: from + text.length, insert: `[](${text})` }], range: EditorSelection.cursor(from + 1) }
    }
    const insert = `[${text}](${URL_PLACEHOLDER})`
    if (text === '') {
      return { changes: [{ from: range.from, to: range.to, insert: `[](${URL_PLACEHOLDER})` }], range: EditorSelection.cursor(range.from + 1) }
    }
    const urlFrom = from + text.length + 3
    return {
      changes: [{ from, to: from + text.length, insert }],
      range: EditorSelection.range(urlFrom, urlFrom + URL_PLACEHOLDER.length)
    }
  })
  dispatch(state.update(update, { scrollIntoView: true, userEvent: 'input.format' }))
  return true
}

// --- line formats ---------------------------------------------------------------------------

/**
 * The lines the selection touches, each once, in order. A range ending at the start of a line
 * (a selection of whole lines) does not touch that line.
 *
 * @param {EditorState} state
 * @return {import('@codemirror/state').Line[]}
 */
const touchedLines = (state) => {
  const numbers = new Set()
  for (const range of state.selection.ranges) {
    const first = state.doc.lineAt(range.from).number
    let last = state.doc.lineAt(range.to).number
    if (!range.empty && last > first && state.doc.line(last).from === range.to) last--
    for (let n = first; n <= last; n++) numbers.add(n)
  }
  return [...numbers].sort((a, b) => a - b).map((n) => state.doc.line(n))
}

/**
 * The lines a line format applies to: the touched lines that have text, or all of them when
 * none has (a caret on an empty line starts a list or a heading there).
 *
 * @param {EditorState} state
 */
const formatLines = (state) => {
  const lines = touchedLines(state)
  const filled = lines.filter((line) => line.text.trim() !== '')
  return filled.length > 0 ? filled : lines
}

/**
 * Applies line changes, keeping each caret and selection on the same text (a caret at the start
 * of a line goes after an inserted prefix).
 *
 * @param {Target} target
 * @param {ChangeSpec[]} specs
 */
const dispatchLineChanges = ({ state, dispatch }, specs) => {
  const changes = state.changes(specs)
  const selection = EditorSelection.create(
    state.selection.ranges.map((r) => r.empty
      ? EditorSelection.cursor(changes.mapPos(r.head, 1))
      // a selection of whole lines keeps their new markers in it
      : sameDirection(r, changes.mapPos(r.from, -1), changes.mapPos(r.to, 1))),
    state.selection.mainIndex
  )
  dispatch(state.update({ changes, selection, scrollIntoView: true, userEvent: 'input.format' }))
}

/** Up to three spaces, hashes, then a space or the end of the line. */
const HEADING = /^( {0,3})(#{1,6})(?:[ \t]+|$)/

/**
 * The heading level of a line's text (0: not a heading).
 *
 * @param {string} text
 */
export const headingLevel = (text) => {
  const match = HEADING.exec(text)
  return match ? match[2].length : 0
}

/**
 * @param {import('@codemirror/state').Line} line
 * @param {number} level 0 removes the heading
 * @return {ChangeSpec | null}
 */
const headingChange = (line, level) => {
  const match = HEADING.exec(line.text)
  const insert = level > 0 ? `${'#'.repeat(level)} ` : ''
  if (match) {
    const from = line.from + match[1].length
    return { from, to: line.from + match[0].length, insert }
  }
  return insert ? { from: line.from, insert } : null
}

/**
 * Heading `level` on the selected lines; on lines that all have it already, back to text.
 * Level 0 is text.
 *
 * @param {number} level
 * @return {Command}
 */
export const toggleHeading = (level) => (target) => {
  if (target.state.readOnly) return false
  const lines = formatLines(target.state)
  const all = lines.every((line) => headingLevel(line.text) === level)
  const next = all ? 0 : level
  dispatchLineChanges(target, lines.map((line) => headingChange(line, next)).filter((c) => c !== null))
  return true
}

/**
 * The next heading level of the first selected line: text, 1, 2 … 6, text again.
 *
 * @type {Command}
 */
export const cycleHeading = (target) => {
  if (target.state.readOnly) return false
  const lines = formatLines(target.state)
  const next = (headingLevel(lines[0].text) + 1) % 7
  dispatchLineChanges(target, lines.map((line) => headingChange(line, next)).filter((c) => c !== null))
  return true
}

/** Quote markers and indentation before a list marker. */
const LIST_ITEM = /^((?:[ \t]*>[ \t]?)*[ \t]*)(?:([-*+]) \[[ xX]\][ \t]|([-*+])[ \t]|(\d{1,9})[.)][ \t])?/

/**
 * What list item a line is: its prefix (indentation, quote markers), its kind and marker.
 *
 * @param {string} text
 * @return {{ prefix: number, kind: 'task' | 'bullet' | 'numbered' | null, end: number }}
 */
export const listItem = (text) => {
  const match = /** @type {RegExpExecArray} */ (LIST_ITEM.exec(text))
  const kind = match[2] ? 'task' : match[3] ? 'bullet' : match[4] ? 'numbered' : null
  return { prefix: match[1].length, kind, end: match[0].length }
}

/**
 * Bulleted (`- `), numbered (`1. `, counting on) or task (`- [ ] `) list items on the selected
 * lines, replacing another kind of list marker; lines that are all items of this kind already
 * become text again.
 *
 * @param {'bullet' | 'numbered' | 'task'} kind
 * @return {Command}
 */
export const toggleList = (kind) => (target) => {
  const { state } = target
  if (state.readOnly) return false
  const lines = formatLines(state)
  const items = lines.map((line) => listItem(line.text))
  const remove = items.every((item) => item.kind === kind)
  // a numbered list right above goes on counting
  let number = 1
  if (kind === 'numbered' && lines[0].number > 1) {
    const above = state.doc.line(lines[0].number - 1).text
    const match = /^[ \t>]*(\d{1,9})[.)][ \t]/.exec(above)
    if (match) number = Number(match[1]) + 1
  }
  const specs = lines.map((line, i) => {
    const item = items[i]
    const from = line.from + item.prefix
    const to = line.from + item.end
    if (remove) return { from, to }
    const marker = kind === 'bullet' ? '- ' : kind === 'task' ? '- [ ] ' : `${number++}. `
    return { from, to, insert: marker }
  })
  dispatchLineChanges(target, specs)
  return true
}

export const toggleBulletList = toggleList('bullet')
export const toggleNumberedList = toggleList('numbered')
export const toggleTaskList = toggleList('task')

/**
 * Quote (`> `) the selected lines, blank lines between them included (so they stay one quote);
 * lines that are all quoted lose one level.
 *
 * @type {Command}
 */
export const toggleQuote = (target) => {
  const { state } = target
  if (state.readOnly) return false
  const lines = touchedLines(state)
  const filled = lines.filter((line) => line.text.trim() !== '')
  const quoted = (/** @type {string} */ text) => /^[ \t]*>/.test(text)
  const remove = filled.length > 0 ? filled.every((line) => quoted(line.text)) : lines.every((line) => quoted(line.text))
  /** @type {ChangeSpec[]} */
  const specs = []
  for (const line of lines) {
    if (remove) {
      const match = /^[ \t]*>[ \t]?/.exec(line.text)
      if (match) specs.push({ from: line.from, to: line.from + match[0].length })
    } else if (line.text.trim() === '') {
      if (lines.length > 1) specs.push({ from: line.from, insert: '>' })
      else specs.push({ from: line.from, insert: '> ' })
    } else if (!quoted(line.text)) {
      specs.push({ from: line.from, insert: '> ' })
    }
  }
  dispatchLineChanges(target, specs)
  return true
}

/**
 * The formatting keys. `Mod` is Cmd on a Mac, Ctrl elsewhere. They come before CodeMirror's
 * default keymap, whose Mod-i (select the parent syntax node) would take italic.
 *
 * @type {readonly import('@codemirror/view').KeyBinding[]}
 */
export const formattingKeymap = Object.freeze([
  { key: 'Mod-b', run: toggleBold },
  { key: 'Mod-i', run: toggleItalic },
  { key: 'Mod-k', run: toggleLink },
  { key: 'Mod-Shift-x', run: toggleStrikethrough },
  { key: 'Mod-e', run: toggleCode },
  { key: 'Mod-`', run: toggleCode },
  ...[1, 2, 3, 4, 5, 6].map((level) => ({ key: `Mod-Alt-${level}`, run: toggleHeading(level) })),
  { key: 'Mod-Alt-0', run: toggleHeading(0) },
  { key: 'Mod-Shift-h', run: cycleHeading },
  { key: 'Mod-Shift-8', run: toggleBulletList },
  { key: 'Mod-Shift-7', run: toggleNumberedList },
  { key: 'Mod-Shift-9', run: toggleTaskList },
  { key: 'Mod-Shift-.', run: toggleQuote }
])
