// Serves the demo page (web/) and the built package (dist/) on 127.0.0.1 with
// the cross-origin-isolation headers, so SharedArrayBuffer (threads) works.
//   node scripts/serve.js            -> prints the URL; PORT=NNNN to choose the port
//   import { startServer } ...       -> used by the browser tests (port 0 = any free)
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, normalize, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// URL prefix -> folder. Anything else is 404: the server exposes nothing but these.
// /common/ is the one folder of code the page shares with the tests and the
// benchmark (the seeded PRNG); web/ reaches it as '../common/…', which
// resolves to /common/… in the page and to the folder itself in Node.
const MOUNTS = [['/dist/', 'dist'], ['/common/', 'common'], ['/', 'web']];
// Single files outside those folders, by exact URL: the trained models' loss
// curve, which the training script writes into docs/ and the page shows.
const FILES = new Map([['/docs/demo_models_loss.svg', 'docs/demo_models_loss.svg']]);
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ts': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

async function resolve(urlPath) {
  if (FILES.has(urlPath)) return join(root, FILES.get(urlPath));
  for (const [prefix, folder] of MOUNTS) {
    if (!urlPath.startsWith(prefix)) continue;
    let rel = decodeURIComponent(urlPath.slice(prefix.length));
    if (rel === '' || rel.endsWith('/')) rel += 'index.html';
    const base = join(root, folder);
    const file = normalize(join(base, rel));
    if (!file.startsWith(base + sep)) return null;  // no escaping the mount
    try {
      if ((await stat(file)).isFile()) return file;
    } catch { /* try the next mount */ }
  }
  return null;
}

export function startServer({ port = 0, host = '127.0.0.1' } = {}) {
  const server = createServer(async (req, res) => {
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-cache',
    };
    try {
      const path = new URL(req.url, 'http://localhost').pathname;
      const file = await resolve(path);
      if (file == null || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found\n');
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500, { ...headers, 'Content-Type': 'text/plain' }).end(`error: ${err.message}\n`);
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      resolvePromise({ server, url: `http://${host}:${actual}/` });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const port = process.env.PORT ? Number(process.env.PORT) : 8080;
  startServer({ port }).then(({ url }) => {
    console.log(`mha-wasm demo: ${url}`);
    console.log('(Ctrl+C to stop)');
  }, (err) => {
    console.error(`could not serve on 127.0.0.1:${port}: ${err.message} (set PORT to another port)`);
    process.exit(1);
  });
}
