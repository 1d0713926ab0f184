// Headless Chromium loads the shipped site from wharfd and the test asserts
// on the rendered DOM: title, navigation links (guestbook, chat), the cards,
// the stylesheet applied, the SVG images decoded; then follows a link to
// /about.html and /docs (301 -> /docs/). Screenshot under
// $WH_BUILD_DIR/test-artifacts/ on failure.
//
// Needs playwright-core in tests/browser/node_modules (`npm ci` or
// `npm install` there; scripts/deps.sh does it) and Debian's /usr/bin/chromium.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = process.env.WH_SOURCE_DIR || path.join(here, '../..');
const BUILD = process.env.WH_BUILD_DIR || path.join(SOURCE, 'build');
const ARTIFACTS = path.join(BUILD, 'test-artifacts');
const { chromium } = createRequire(path.join(SOURCE, 'tests/browser/package.json'))('playwright-core');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wharfd_browser_'));
const errorLog = path.join(tmp, 'error.log');
let server = null;
let browser = null;
let page = null;

function fail(msg) {
  throw new Error(msg);
}

async function startWharfd() {
  server = spawn(path.join(BUILD, 'wharfd'), [
    '--root', path.join(SOURCE, 'public'), '--bind', '127.0.0.1:0', '--threads', '1',
    '--access-log', 'off', '--error-log', errorLog,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) fail(`wharfd exited ${server.exitCode}`);
    const log = fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8') : '';
    const m = log.match(/listening on 127\.0\.0\.1:(\d+)/);
    if (m) return `http://127.0.0.1:${m[1]}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  fail('wharfd did not start');
}

let failed = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failed++;
}

try {
  const base = await startWharfd();
  // A fresh profile dir (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = browser.pages()[0] || await browser.newPage();
  const resp = await page.goto(base + '/', { waitUntil: 'load', timeout: 20000 });
  check(resp.status() === 200, `index status ${resp.status()}`);
  check((await page.title()).startsWith('wharf'), `title "${await page.title()}"`);
  check((await page.textContent('#title')) === 'Welcome to wharf', 'h1 rendered');
  check(await page.locator('nav a[href="/guestbook"]').count() === 1, 'link to the guestbook');
  check(await page.locator('nav a[href="/chat.html"]').count() === 1, 'link to the chat');
  check(await page.locator('article.card').count() === 3, 'three cards');
  const bg = await page.evaluate(() => getComputedStyle(document.querySelector('header.site')).backgroundColor);
  check(bg === 'rgb(31, 111, 139)', `style.css applied (header ${bg})`);
  const imgs = await page.evaluate(() => [...document.images].map((i) => [i.src, i.complete && i.naturalWidth > 0]));
  check(imgs.length >= 2 && imgs.every(([, okImg]) => okImg), `images decoded ${JSON.stringify(imgs)}`);

  await page.click('nav a[href="/about.html"]');
  await page.waitForLoadState('load');
  check((await page.textContent('#title')) === 'About wharf', 'navigated to about.html');
  const r2 = await page.goto(base + '/docs', { waitUntil: 'load' });
  check(page.url() === base + '/docs/' && r2.status() === 200, `/docs redirected to ${page.url()}`);
  check(await page.locator('table.flags tbody tr').count() >= 5, 'docs table rendered');
  const r404 = await page.goto(base + '/missing.html');
  check(r404.status() === 404, '404 page for a missing file');
} catch (e) {
  console.log(`FAIL ${e.stack || e}`);
  failed++;
}
if (failed && page) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'wharfd_browser.png');
  try {
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
  } catch (e) { /* page gone */ }
}
if (browser) await browser.close().catch(() => {});
if (server && server.exitCode === null) {
  server.kill('SIGTERM');
  await new Promise((r) => { server.once('exit', r); setTimeout(r, 10000); });
}
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`${failed} failure(s)`);
process.exit(failed ? 1 : 0);
