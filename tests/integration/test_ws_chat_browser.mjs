// Headless Chromium chats with itself: wharfd serves public/chat.html; two
// pages (tabs) open it, each connects its WebSocket to /ws/chat, and each
// sees the other's message (and its own) in the rendered list. Markup in a
// message shows as text. A third page joining later sees new messages too.
// A screenshot of each page is saved under $WH_BUILD_DIR/test-artifacts/ on
// failure.
//
// Needs playwright-core from tests/browser/node_modules (scripts/deps.sh runs
// npm install there; WH_PLAYWRIGHT_DIR may point elsewhere) and Debian's
// /usr/bin/chromium; never downloads a browser. Skips (exit 0) without them
// unless WH_REQUIRE_BROWSER=1.
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

let failures = 0;
function check(cond, what) {
  console.log((cond ? '  ok   ' : '  FAIL ') + what);
  if (!cond) failures++;
  return cond;
}

// The texts of the rendered messages of a page, as "name: text".
async function lines(page) {
  return page.$$eval('#messages li', (lis) => lis.map((li) =>
    li.querySelector('.name').textContent + ': ' + li.querySelector('.text').textContent));
}

async function send(page, name, text) {
  await page.fill('#name', name);
  await page.fill('#text', text);
  await page.click('#send');
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
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-chat-browser-'));
  const log = path.join(tmp, 'wharfd.log');
  const wharfd = spawn(path.join(BUILD, 'wharfd'), ['--port', '0', '--bind', '127.0.0.1',
    '--threads', '2', '--root', path.join(SOURCE, 'public'), '--access-log', 'off',
    '--error-log', log], { stdio: 'ignore' });
  children.push(wharfd);
  const port = await waitFor(() => {
    try {
      const m = /listening on .*:(\d+)/.exec(fs.readFileSync(log, 'utf8'));
      return m ? Number(m[1]) : null;
    } catch (e) { return null; }
  }, 10000, 'wharfd');
  const url = `http://127.0.0.1:${port}/chat.html`;
  console.log(`wharfd on ${port}`);

  const ctx = await pw.chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const pages = [];
  try {
    const a = ctx.pages()[0] || await ctx.newPage();
    const b = await ctx.newPage();
    pages.push(a, b);
    for (const p of pages) {
      p.setDefaultTimeout(10000);
      const resp = await p.goto(url);
      check(resp.status() === 200, 'GET /chat.html is 200');
    }
    for (const p of pages)
      await p.waitForSelector('#status.open');
    check(true, 'both pages connected (status "connected")');

    await send(a, 'alice', 'hello from tab A');
    await send(b, 'bob', 'hi A, this is <b>tab B</b>');
    const want = ['alice: hello from tab A', 'bob: hi A, this is <b>tab B</b>'];
    for (const [i, p] of pages.entries()) {
      const got = await waitFor(async () => {
        const l = await lines(p);
        return l.length >= 2 ? l : null;
      }, 10000, `two messages on page ${i}`);
      check(JSON.stringify(got) === JSON.stringify(want),
        `page ${'AB'[i]} shows both messages in order: ${JSON.stringify(got)}`);
    }
    check(await b.locator('#messages b').count() === 0, 'markup in a message is shown as text');

    // A third tab joining later gets what is said from then on.
    const c = await ctx.newPage();
    pages.push(c);
    c.setDefaultTimeout(10000);
    await c.goto(url);
    await c.waitForSelector('#status.open');
    await send(c, 'carol', 'late but here ✓');
    for (const [i, p] of pages.entries()) {
      await waitFor(async () => (await lines(p)).includes('carol: late but here ✓'), 10000,
        `carol's message on page ${i}`);
    }
    check(true, 'a third tab\'s message reaches all three');
  } catch (e) {
    failures++;
    console.log('  FAIL exception: ' + (e && e.stack || e));
  }
  if (failures) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const [i, p] of pages.entries()) {
      const shot = path.join(ARTIFACTS, `ws-chat-browser-failure-${i}.png`);
      try {
        await p.screenshot({ path: shot, fullPage: true });
        console.log('screenshot: ' + shot);
      } catch (e) { console.log('no screenshot: ' + e); }
    }
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
