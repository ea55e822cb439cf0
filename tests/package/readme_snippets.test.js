// Every ```js block of README.md runs as written: each is saved as an ES
// module inside a fresh project with the packed package installed (so its
// `import ... from 'mha-wasm'` gets what a user gets) and run with node; it
// must exit with code 0. Where a block prints with console.log and the next
// line (or the end of that line) is a `// ...` comment, that comment is the
// documented output and must match what was printed (ignoring spacing). A block that cannot run as
// written fails here, by its line number, so the README gets fixed rather
// than the block skipped. Blocks fenced with another language are not run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { makeConsumer, runNode, repoRoot, serveStatic, openChromium } from './consumer.js';

const RUNNABLE = new Set(['js', 'javascript']);

/** The fenced blocks of a Markdown text: { lang, line (of the opening fence, 1-based), code }. */
function fencedBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, fence, lang] = open;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j].trimStart().startsWith(fence) && lines[j].trim().replace(/[`~]/g, '') === '')) body.push(lines[j++]);
    blocks.push({ lang: lang.toLowerCase(), line: i + 1, code: body.join('\n') });
    i = j;
  }
  return blocks;
}

// The documented output of a block with one console.log: a `// ...` comment
// at the end of that line or alone on the next line.
function documentedOutput(code) {
  const lines = code.split('\n');
  const logs = lines.map((l, i) => (/^\s*console\.log\(/.test(l) ? i : -1)).filter((i) => i >= 0);
  if (logs.length !== 1) return null;
  const trailing = /\)\s*;?\s*\/\/\s?(.*)$/.exec(lines[logs[0]]);
  if (trailing) return trailing[1];
  const next = /^\s*\/\/\s?(.*)$/.exec(lines[logs[0] + 1] ?? '');
  return next ? next[1] : null;
}

// Printed and documented agree, ignoring spacing; the comment may go on with
// an explanation after a colon ("true: the bias differs").
function matchesDocumented(printed, comment) {
  const squash = (text) => text.replace(/\s+/g, '');
  const out = squash(printed), doc = squash(comment);
  return doc === out || (out !== '' && doc.startsWith(`${out}:`));
}

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const snippets = fencedBlocks(readme).filter((b) => RUNNABLE.has(b.lang));

// Files a README reader has at hand, placed where the snippets open them: the
// GPT-2 attention weights written by PyTorch (tests/fixtures/generate_safetensors.py)
// and a tiny Qwen3 checkpoint as the Hub lays one out (tests/fixtures/generate_models.py).
const READER_FILES = ['tests/fixtures/safetensors/gpt2_attention.safetensors',
  'tests/fixtures/models/qwen3/config.json', 'tests/fixtures/models/qwen3/model.safetensors'];

let consumer;
before(async () => {
  consumer = await makeConsumer('readme');
  for (const file of READER_FILES) copyFileSync(join(repoRoot, file), join(consumer.dir, file.split('/').pop()));
});
after(() => consumer?.cleanup());

test('README.md has ```js snippets to run, and the packed README is the same file', () => {
  assert.ok(snippets.length > 0, 'no ```js block found in README.md: the extraction is broken or the README lost its examples');
  assert.equal(readFileSync(join(consumer.packageDir, 'README.md'), 'utf8'), readme, 'the README in the tarball differs from the one in the repository');
});

snippets.forEach((snippet, k) => {
  const n = k + 1;
  const first = snippet.code.split('\n').find((l) => l.trim() !== '') ?? '';
  const name = `README.md snippet ${n} (the \`\`\`js block at line ${snippet.line}: ${first.trim().slice(0, 60)}) runs as written`;
  test(name, { timeout: 60_000 }, async () => {
    const file = join(consumer.dir, `readme-snippet-${n}.mjs`);
    writeFileSync(file, `${snippet.code}\n`);
    const r = await runNode(consumer, file);
    if (r.code !== 0) {
      const why = r.timedOut ? 'did not finish within 30 s' : `exited with code ${r.code}`;
      const error = r.stderr.split('\n').find((l) => /^\w*Error\b|^Error/.test(l.trim())) ?? r.stderr.trim().split('\n').at(-1);
      assert.fail(`README.md snippet ${n} (line ${snippet.line}) cannot run as written: it ${why}: ${error}\n` +
        `--- the snippet\n${snippet.code}\n--- stderr\n${r.stderr.slice(-3000)}`);
    }
    const expected = documentedOutput(snippet.code);
    if (expected !== null) {
      assert.ok(matchesDocumented(r.stdout, expected),
        `README.md snippet ${n} (line ${snippet.line}) prints something else than its comment says:\n  printed: ${r.stdout.trim()}\n  comment: ${expected}`);
    }
  });
});

// The README's ```html blocks are pages: each is served from the consumer
// project (where ./node_modules/mha-wasm is the installed tarball), opened in
// Chromium, and must log without a page error, with and without cross-origin
// isolation.
const pages = fencedBlocks(readme).filter((b) => b.lang === 'html');
let browser;
after(() => browser?.close());

test('README.md has an ```html page snippet', () => {
  assert.ok(pages.length > 0, 'no ```html block found in README.md');
});

pages.forEach((snippet, k) => {
  for (const isolated of [false, true]) {
    test(`README.md html snippet ${k + 1} (line ${snippet.line}) runs in Chromium${isolated ? ', cross-origin isolated' : ''}`, { timeout: 60_000 }, async () => {
      const name = `readme-page-${k + 1}.html`;
      writeFileSync(join(consumer.dir, name), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">\n${snippet.code}\n`);
      const server = await serveStatic(consumer.dir, { isolated });
      browser ??= await openChromium();  // one browser for every page snippet
      try {
        const page = await browser.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        const logged = new Promise((resolve) => page.on('console', (m) => { if (m.type() === 'log') resolve(m.text()); }));
        await page.goto(`${server.origin}/${name}`);
        const text = await Promise.race([logged, new Promise((_, reject) => setTimeout(() => reject(new Error('the page logged nothing within 30 s')), 30_000))]);
        assert.deepEqual(errors, []);
        assert.match(text, isolated ? /(simd|relaxed)-threads/ : /(simd|relaxed) .*Cross-Origin-Opener-Policy/, text);
      } finally {
        await server.close();
      }
    });
  }
});
