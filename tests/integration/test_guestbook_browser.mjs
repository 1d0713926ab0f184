// Headless Chromium signs the guestbook: wharfd --redis against a
// redis-server started here (free loopback port, stopped by PID, also on
// failure). The browser fills in and submits the form, lands back on the
// page (303 -> GET), sees the entry (escaped: markup shows as text), reloads
// and still sees it; the entry is in Redis; a too-long name (maxlength
// removed from the DOM) gets the 413 page with its reason.
// A screenshot is saved under $WH_BUILD_DIR/test-artifacts/ on failure.
//
// Needs playwright-core from tests/browser/node_modules (scripts/deps.sh runs
// npm install there) and Debian's /usr/bin/chromium; never downloads a browser.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = process.env.WH_SOURCE_DIR || path.join(here, '../..');
const BUILD = process.env.WH_BUILD_DIR || path.join(SOURCE, 'build');
const ARTIFACTS = path.join(BUILD, 'test-artifacts');

function loadPlaywright() {
  const bases = [path.join(SOURCE, 'tests/browser/'), here + '/'];
  if (process.env.WH_PLAYWRIGHT_DIR) bases.unshift(process.env.WH_PLAYWRIGHT_DIR + '/');
  for (const b of bases) {
    try {
      return createRequire(b + 'package.json')('playwright-core');
    } catch (e) { /* try the next */ }
  }
  return null;
}

const children = [];
function killAll() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { process.kill(c.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
  }
}
process.on('exit', killAll);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { killAll(); process.exit(1); });

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
    srv.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error('timed out waiting for ' + what);
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

let failures = 0;
function check(cond, what) {
  console.log((cond ? '  ok   ' : '  FAIL ') + what);
  if (!cond) failures++;
  return cond;
}

async function main() {
  const pw = loadPlaywright();
  if (!pw) {
    console.log('SKIP: playwright-core not installed in tests/browser (run scripts/deps.sh)');
    return process.env.WH_REQUIRE_BROWSER === '1' ? 1 : 0;
  }
  if (!fs.existsSync('/usr/bin/chromium')) {
    console.log('SKIP: /usr/bin/chromium not installed');
    return process.env.WH_REQUIRE_BROWSER === '1' ? 1 : 0;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-gb-browser-'));
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  children.push(redis);
  await waitFor(() => canConnect(redisPort), 10000, 'redis-server');

  const root = path.join(tmp, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'index.html'), '<p>index</p>\n');
  const log = path.join(tmp, 'wharfd.log');
  const wharfd = spawn(path.join(BUILD, 'wharfd'), ['--port', '0', '--bind', '127.0.0.1',
    '--threads', '2', '--root', root, '--access-log', 'off', '--error-log', log,
    '--redis', '127.0.0.1:' + redisPort], { stdio: 'ignore' });
  children.push(wharfd);
  const port = await waitFor(() => {
    try {
      const m = /listening on .*:(\d+)/.exec(fs.readFileSync(log, 'utf8'));
      return m ? Number(m[1]) : null;
    } catch (e) { return null; }
  }, 10000, 'wharfd');
  const base = `http://127.0.0.1:${port}`;
  console.log(`redis on ${redisPort}, wharfd on ${port}`);

  const profile = path.join(tmp, 'profile');
  const ctx = await pw.chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(10000);
  try {
    const resp = await page.goto(base + '/guestbook');
    check(resp.status() === 200, 'GET /guestbook is 200');
    check(await page.locator('#gb-form').count() === 1, 'the page has the form');
    const v1 = Number(await page.locator('#gb-visitors').textContent());
    check(v1 >= 1, `visitor counter shown (${v1})`);

    const stamp = Date.now().toString(36);
    const name = 'Chromium ' + stamp;
    const msg = `Hello from a real browser <b>${stamp}</b> & friends`;
    await page.fill('#gb-name', name);
    await page.fill('#gb-message', msg);
    const [nav] = await Promise.all([
      page.waitForNavigation(),
      page.click('#gb-submit'),
    ]);
    check(nav && nav.status() === 200, 'submit lands on the page again (303 -> GET 200)');
    check(new URL(page.url()).pathname === '/guestbook', `URL is /guestbook (${page.url()})`);
    const first = page.locator('#gb-entries .entry').first();
    check((await first.locator('.msg').textContent()) === msg, 'the new entry is shown first, as text');
    check((await first.locator('.name').textContent()) === name, 'with its name');
    check(await first.locator('.msg b').count() === 0, 'markup in the message was escaped');
    const v2 = Number(await page.locator('#gb-visitors').textContent());
    check(v2 === v1 + 1, `counter went up by one (${v1} -> ${v2})`);

    await page.reload();
    const again = page.locator('#gb-entries .entry').first();
    check((await again.locator('.msg').textContent()) === msg, 'after reload the entry is still there');
    const v3 = Number(await page.locator('#gb-visitors').textContent());
    check(v3 === v2 + 1, `reload counts as a visit (${v3})`);

    const stored = execFileSync('redis-cli', ['-p', String(redisPort), 'LINDEX',
      'guestbook:entries', '0']).toString();
    check(stored.includes(stamp) && JSON.parse(stored).name === name, 'the entry is in Redis');

    // Limits: lift the browser's maxlength and send a 65-byte name.
    await page.evaluate(() => document.querySelector('#gb-name').removeAttribute('maxlength'));
    await page.fill('#gb-name', 'x'.repeat(65));
    await page.fill('#gb-message', 'too long a name');
    const [nav2] = await Promise.all([page.waitForNavigation(), page.click('#gb-submit')]);
    check(nav2 && nav2.status() === 413, `65-byte name -> 413 (${nav2 && nav2.status()})`);
    check(/name is too long/.test(await page.locator('#gb-error').textContent()),
      'the error page says why');
    await page.click('text=Back to the guestbook');
    check(await page.locator('#gb-form').count() === 1, 'the link leads back to the guestbook');
  } catch (e) {
    failures++;
    console.log('  FAIL exception: ' + (e && e.stack || e));
  }
  if (failures) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'guestbook-browser-failure.png');
    try {
      await page.screenshot({ path: shot, fullPage: true });
      console.log('screenshot: ' + shot);
    } catch (e) { console.log('no screenshot: ' + e); }
  }
  await ctx.close();
  killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
  return failures ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => {
  console.log('FAIL ' + (e && e.stack || e));
  killAll();
  process.exit(1);
});
