// Unit tests of the formatting commands (src/formatting.js), the toolbar's key names
// (src/format-toolbar.js), the local exports (src/local-export.js) and the theme choice
// (src/theme.js). No browser: an EditorState with the Markdown language runs each command.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EditorSelection, EditorState } from '@codemirror/state'
import { markdownLanguage } from '@codemirror/lang-markdown'

import {
  cycleHeading, headingLevel, listItem, toggleBold, toggleBulletList, toggleCode, toggleHeading,
  toggleItalic, toggleLink, toggleNumberedList, toggleQuote, toggleStrikethrough, toggleTaskList
} from '../src/formatting.js'
import { ariaKeys, keyLabel } from '../src/format-toolbar.js'
import { escapeHtml, exportFilename, htmlPage, localExport } from '../src/local-export.js'
import { resolveTheme, themeChoice } from '../src/theme.js'

/**
 * The text with `«` `»` around each selection (`|` for a caret), as the command leaves it.
 *
 * @param {string} marked the document with «selections» and | carets
 * @param {(target: any) => boolean} command
 */
const run = (marked, command) => {
  const ranges = []
  let doc = ''
  let anchor = null
  for (const char of marked) {
    if (char === '|') ranges.push(EditorSelection.cursor(doc.length))
    else if (char === '«') anchor = doc.length
    else if (char === '»') {
      ranges.push(EditorSelection.range(anchor, doc.length))
      anchor = null
    } else doc += char
  }
  let state = EditorState.create({
    doc,
    selection: EditorSelection.create(ranges),
    extensions: [markdownLanguage, EditorState.allowMultipleSelections.of(true)]
  })
  const ok = command({ state, dispatch: (tr) => { state = tr.state } })
  assert.equal(ok, true)
  let out = state.doc.toString()
  for (const range of [...state.selection.ranges].sort((a, b) => b.from - a.from)) {
    out = range.empty
      ? out.slice(0, range.from) + '|' + out.slice(range.from)
      : out.slice(0, range.from) + '«' + out.slice(range.from, range.to) + '»' + out.slice(range.to)
  }
  return out
}

test('bold, italic, strikethrough and code wrap the selection and unwrap it again', () => {
  assert.equal(run('a «word» b', toggleBold), 'a **«word»** b')
  assert.equal(run('a **«word»** b', toggleBold), 'a «word» b')
  assert.equal(run('a «**word**» b', toggleBold), 'a «word» b')
  assert.equal(run('a **wo|rd** b', toggleBold), 'a wo|rd b') // a caret inside is enough
  assert.equal(run('a «word» b', toggleItalic), 'a _«word»_ b')
  assert.equal(run('a _«word»_ b', toggleItalic), 'a «word» b')
  assert.equal(run('a *wo|rd* b', toggleItalic), 'a wo|rd b')
  assert.equal(run('a «word» b', toggleStrikethrough), 'a ~~«word»~~ b')
  assert.equal(run('a ~~«word»~~ b', toggleStrikethrough), 'a «word» b')
  assert.equal(run('a «word» b', toggleCode), 'a `«word»` b')
  assert.equal(run('a `«word»` b', toggleCode), 'a «word» b')
})

test('bold and italic on the same text stay apart', () => {
  assert.equal(run('**«word»**', toggleItalic), '**_«word»_**')
  assert.equal(run('***«word»***', toggleBold), '*«word»*')
  assert.equal(run('***«word»***', toggleItalic), '**«word»**')
})

test('a caret gets an empty pair, and the same key takes it away', () => {
  assert.equal(run('a |', toggleBold), 'a **|**')
  assert.equal(run('a **|**', toggleBold), 'a |')
  assert.equal(run('a _|_', toggleItalic), 'a |')
  assert.equal(run('a **|**', toggleItalic), 'a **_|_**')
})

test('outer spaces stay outside the marks, and several lines are marked one by one', () => {
  assert.equal(run('a« word »b', toggleBold), 'a **«word»** b')
  assert.equal(run('«one\n\ntwo»', toggleBold), '«**one**\n\n**two**»')
  assert.equal(run('«**one**\n\n**two**»', toggleBold), '«one\n\ntwo»')
})

test('every selection range is formatted, in one transaction', () => {
  assert.equal(run('«one» and «two»', toggleBold), '**«one»** and **«two»**')
  assert.equal(run('**«one»** and **«two»**', toggleBold), '«one» and «two»')
  assert.equal(run('«a»\n«b»', toggleBulletList), '«- a»\n«- b»')
})

test('link: [selection](url) with the url selected; inside a link, back to its text', () => {
  assert.equal(run('see «the docs» now', toggleLink), 'see [the docs](«url») now')
  assert.equal(run('see [the docs](u|rl) now', toggleLink), 'see «the docs» now')
  assert.equal(run('go |', toggleLink), 'go [|](url)')
  assert.equal(run('«https://example.org»', toggleLink), '[|](https://example.org)')
})

test('headings: a level, the same level again removes it, the cycle, the level of a line', () => {
  assert.equal(run('Tit|le', toggleHeading(2)), '## Tit|le')
  assert.equal(run('## Tit|le', toggleHeading(2)), 'Tit|le')
  assert.equal(run('# Tit|le', toggleHeading(3)), '### Tit|le')
  assert.equal(run('### Tit|le', toggleHeading(0)), 'Tit|le')
  assert.equal(run('|', toggleHeading(1)), '# |')
  assert.equal(run('Tit|le', cycleHeading), '# Tit|le')
  assert.equal(run('# Tit|le', cycleHeading), '## Tit|le')
  assert.equal(run('###### Tit|le', cycleHeading), 'Tit|le')
  assert.deepEqual(['# a', '###### b', '####### c', '#no', 'text'].map(headingLevel), [1, 6, 0, 0, 0])
})

test('lists: bullets, numbers counting on, tasks; converting and removing', () => {
  assert.equal(run('«one\ntwo»', toggleBulletList), '«- one\n- two»')
  assert.equal(run('«- one\n- two»', toggleBulletList), '«one\ntwo»')
  assert.equal(run('«one\ntwo»', toggleNumberedList), '«1. one\n2. two»')
  assert.equal(run('1. first\n«two\nthree»', toggleNumberedList), '1. first\n«2. two\n3. three»')
  assert.equal(run('«- one\n- two»', toggleNumberedList), '«1. one\n2. two»')
  assert.equal(run('«one»', toggleTaskList), '«- [ ] one»')
  assert.equal(run('- [x] «done»', toggleTaskList), '«done»')
  assert.equal(run('|', toggleBulletList), '- |') // a caret on an empty line starts a list
  assert.equal(run('  in|dented', toggleBulletList), '  - in|dented')
  assert.equal(run('«one\n\ntwo»', toggleBulletList), '«- one\n\n- two»') // blank lines stay blank
  assert.deepEqual(listItem('> - [ ] x'), { prefix: 2, kind: 'task', end: 8 })
})

test('quotes: lines and the blank lines between them; all quoted loses one level', () => {
  assert.equal(run('«one\n\ntwo»', toggleQuote), '«> one\n>\n> two»')
  assert.equal(run('«> one\n>\n> two»', toggleQuote), '«one\n\ntwo»')
  assert.equal(run('wor|d', toggleQuote), '> wor|d')
})

test('no command changes a read-only text', () => {
  const state = EditorState.create({ doc: 'x', extensions: [markdownLanguage, EditorState.readOnly.of(true)] })
  for (const command of [toggleBold, toggleLink, toggleHeading(1), toggleBulletList, toggleQuote]) {
    assert.equal(command({ state, dispatch: () => assert.fail('dispatched') }), false)
  }
})

test('key names for people and for aria-keyshortcuts', () => {
  assert.equal(keyLabel('Mod-Shift-x', false), 'Ctrl+Shift+X')
  assert.equal(keyLabel('Mod-Shift-x', true), '⌘⇧X')
  assert.equal(ariaKeys('Mod-b', false), 'Control+B')
  assert.equal(ariaKeys('Mod-Alt-1', true), 'Meta+Alt+1')
})

test('local exports: the server\'s file names, escaped HTML, the renderer when there is one', async () => {
  assert.equal(exportFilename('team/notes', 'md'), 'team_notes.md')
  assert.equal(exportFilename('..', 'txt'), 'document.txt')
  assert.equal(escapeHtml('<b a="1">&\''), '&#60;b a=&#34;1&#34;&#62;&#38;&#39;')
  assert.match(htmlPage('<n>', '# <x>', undefined), /<title>&#60;n&#62;<\/title>[\s\S]*<pre># &#60;x&#62;<\/pre>/)
  assert.match(htmlPage('n', '# x', (md) => `<h1>${md.slice(2)}</h1>`), /<h1>x<\/h1>/)
  assert.match(htmlPage('n', 'x', () => { throw new Error('broken') }), /<pre>x<\/pre>/)
  const md = localExport({ format: 'md', name: 'a/b', text: 'hi', update: () => new Uint8Array([1]) })
  assert.equal(md?.filename, 'a_b.md')
  assert.equal(await md?.blob.text(), 'hi')
  assert.equal(localExport({ format: 'json', name: 'a', text: '', update: () => new Uint8Array() }), null)
})

test('theme: the stored choice, and what it means with the system\'s preference', () => {
  assert.deepEqual(['dark', 'light', 'system', 'blue', null].map(themeChoice), ['dark', 'light', 'system', 'system', 'system'])
  assert.equal(resolveTheme('system', true), 'dark')
  assert.equal(resolveTheme('system', false), 'light')
  assert.equal(resolveTheme('light', true), 'light')
})
