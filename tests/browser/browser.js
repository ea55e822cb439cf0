// Shared setup of the browser suite: the demo server on a free loopback port
// and Debian's Chromium driven by playwright-core (never a downloaded browser).
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

import { startServer } from '../../scripts/serve.js';

export const artifactsDir = new URL('../artifacts/', import.meta.url);

export async function openBrowser() {
  const { server, url } = await startServer({ port: 0 });
  const profile = mkdtempSync(join(tmpdir(), 'mha-chromium-'));
  // The flags keep a headless root Chromium from reaching out to the (closed) network.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(artifactsDir, { recursive: true });
  return {
    url,
    context,
    async close() {
      await context.close();
      await new Promise((r) => server.close(r));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
