// Headless Chromium loads the shipped site from wharfd and the test asserts
// on the rendered DOM: title, navigation links (guestbook, chat), the cards,
// the stylesheet applied, the SVG images decoded; then follows a link to
// /about.html and /docs (301 -> /docs/). Screenshot under
// $WH_BUILD_DIR/test-artifacts/ on failure.
//
// Needs playwright-core in tests/browser/node_modules (`npm ci` or
// `npm install` there; scripts/deps.sh does it) and Debian's /usr/bin/chromium.
import path from 'node:path';
import * as h from '../browser/harness.mjs';

const { check, result } = h;
const pw = h.loadPlaywright();
if (!pw) throw new Error('playwright-core not installed in tests/browser (npm ci there)');

const tmp = h.makeTmp('wharfd_browser_');
let server = null;
let browser = null;
let page = null;

try {
  const started = await h.startWharfd(['--root', path.join(h.SOURCE, 'public'),
    '--bind', '127.0.0.1:0', '--threads', '1', '--access-log', 'off'],
  path.join(tmp, 'error.log'), { ms: 15000, stdio: ['ignore', 'ignore', 'inherit'] });
  server = started.child;
  const base = `http://127.0.0.1:${started.port}`;
  browser = await h.launchChromium(pw, path.join(tmp, 'profile'));
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
  result.failures++;
}
if (result.failures && page) await h.screenshots([page], 'wharfd_browser.png');
if (browser) await browser.close().catch(() => {});
await h.terminate(server);
h.rmTmp(tmp);
console.log(`${result.failures} failure(s)`);
process.exit(result.failures ? 1 : 0);
