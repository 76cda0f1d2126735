// Builds the web client into dist/: bundled, minified home.js, editor.js and style.css (with
// source maps), plus the HTML pages and the icon copied from src/. The pages refer to each
// built file as /static/<file>?v=<content hash>, so a browser never runs a stale bundle after an
// upgrade. src/sw.js (the service worker, which imports nothing) is copied as it is: the server
// serves it at /sw.js.
//
//   node build.mjs           one build
//   node build.mjs --watch   rebuild on every change
import * as esbuild from 'esbuild'
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(fileURLToPath(import.meta.url))
const src = join(root, 'src')
const dist = join(root, 'dist')
const watch = process.argv.includes('--watch')

const PAGES = ['index.html', 'editor.html']
const ASSETS = ['home.js', 'editor.js', 'preview-worker.js', 'theme.js', 'style.css', 'favicon.svg']

const copyStatic = async () => {
  await copyFile(join(src, 'favicon.svg'), join(dist, 'favicon.svg'))
  await copyFile(join(src, 'sw.js'), join(dist, 'sw.js'))
  /** @type {Record<string, string>} */
  const version = {}
  for (const file of ASSETS) {
    version[file] = createHash('sha256').update(await readFile(join(dist, file))).digest('hex').slice(0, 10)
  }
  for (const page of PAGES) {
    const html = await readFile(join(src, page), 'utf8')
    const versioned = html.replace(/"\/static\/([\w.-]+)"/g, (whole, file) =>
      file in version ? `"/static/${file}?v=${version[file]}"` : whole)
    await writeFile(join(dist, page), versioned)
  }
}

/** @type {esbuild.BuildOptions} */
const options = {
  absWorkingDir: root,
  entryPoints: {
    home: join(src, 'home.js'),
    editor: join(src, 'editor.js'),
    theme: join(src, 'theme.js'), // loaded in <head>, before the first paint
    'preview-worker': join(src, 'preview-worker.js'), // the preview's renderer (preview.js)
    style: join(src, 'style.css')
  },
  outdir: dist,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  legalComments: 'linked',
  logLevel: 'info',
  plugins: [{
    name: 'copy-html',
    setup (build) {
      build.onEnd(async (result) => {
        if (result.errors.length === 0) await copyStatic()
      })
    }
  }]
}

const started = Date.now()
await rm(dist, { recursive: true, force: true })
await mkdir(dist, { recursive: true })
if (watch) {
  const context = await esbuild.context(options)
  await context.watch()
  console.log('watching src/ (Ctrl-C to stop)')
} else {
  await esbuild.build(options)
  console.log(`dist/ built in ${Date.now() - started} ms`)
}
