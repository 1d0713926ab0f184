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
import path from 'node:path';
import * as h from '../browser/harness.mjs';

const { check, waitFor } = h;

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
  const { pw, skip } = h.browserOrSkip();
  if (!pw) return skip;
  const tmp = h.makeTmp('wh-chat-browser-');
  const { port } = await h.startWharfd(['--port', '0', '--bind', '127.0.0.1',
    '--threads', '2', '--root', path.join(h.SOURCE, 'public'), '--access-log', 'off'],
  path.join(tmp, 'wharfd.log'));
  const url = `http://127.0.0.1:${port}/chat.html`;
  console.log(`wharfd on ${port}`);

  const ctx = await h.launchChromium(pw, path.join(tmp, 'profile'));
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
    h.failException(e);
  }
  return h.finish(ctx, tmp, pages, (i) => `ws-chat-browser-failure-${i}.png`);
}

h.runMain(main);
