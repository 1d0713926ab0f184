// Headless Chromium signs the guestbook: wharfd --redis against a
// redis-server started here (free loopback port, stopped by PID, also on
// failure). The browser fills in and submits the form (with its hidden
// token and the browser's own Origin header: both must pass), lands back on
// the page (303 -> GET, not counted as a visit), sees the entry (escaped:
// markup shows as text), reloads and still sees it; the entry is in Redis; a
// too-long name (maxlength removed from the DOM) gets the 413 page with its
// reason; a form whose token was tampered with gets 403.
// A screenshot is saved under $WH_BUILD_DIR/test-artifacts/ on failure.
//
// Needs playwright-core from tests/browser/node_modules (scripts/deps.sh runs
// npm install there) and Debian's /usr/bin/chromium; never downloads a browser.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as h from '../browser/harness.mjs';

const { check } = h;

async function main() {
  const { pw, skip } = h.browserOrSkip();
  if (!pw) return skip;
  const tmp = h.makeTmp('wh-gb-browser-');
  const redisPort = await h.freePort();
  h.spawnChild('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  await h.waitFor(() => h.canConnect(redisPort), 10000, 'redis-server');

  const root = path.join(tmp, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'index.html'), '<p>index</p>\n');
  const { port } = await h.startWharfd(['--port', '0', '--bind', '127.0.0.1',
    '--threads', '2', '--root', root, '--access-log', 'off',
    '--redis', '127.0.0.1:' + redisPort], path.join(tmp, 'wharfd.log'));
  const base = `http://127.0.0.1:${port}`;
  console.log(`redis on ${redisPort}, wharfd on ${port}`);

  const ctx = await h.launchChromium(pw, path.join(tmp, 'profile'));
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
    check(await page.locator('#gb-form input[name="token"]').count() === 1,
      'the form carries a token');
    const first = page.locator('#gb-entries .entry').first();
    check((await first.locator('.msg').textContent()) === msg, 'the new entry is shown first, as text');
    check((await first.locator('.name').textContent()) === name, 'with its name');
    check(await first.locator('.msg b').count() === 0, 'markup in the message was escaped');
    const v2 = Number(await page.locator('#gb-visitors').textContent());
    check(v2 === v1, `the page after posting is not another visit (${v1} -> ${v2})`);

    await page.reload();
    const again = page.locator('#gb-entries .entry').first();
    check((await again.locator('.msg').textContent()) === msg, 'after reload the entry is still there');
    const v3 = Number(await page.locator('#gb-visitors').textContent());
    check(v3 === v2, `reloading the page after posting is not a visit either (${v3})`);
    await page.goto(base + '/guestbook');
    const v4 = Number(await page.locator('#gb-visitors').textContent());
    check(v4 === v3 + 1, `coming back to the guestbook counts (${v4})`);

    // The newest stream entry: its ID, then field and value lines.
    const lines = execFileSync('redis-cli', ['-p', String(redisPort), 'XREVRANGE',
      'guestbook:stream', '+', '-', 'COUNT', '1']).toString().split('\n');
    const fields = {};
    for (let i = 1; i + 1 < lines.length; i += 2) fields[lines[i]] = lines[i + 1];
    check(fields.msg && fields.msg.includes(stamp) && fields.name === name, 'the entry is in Redis');

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

    // A form whose token was changed (a copy of the form on another page
    // could not have ours): 403 with the reason.
    await page.evaluate(() => { document.querySelector('#gb-form input[name="token"]').value = '0'.repeat(32); });
    await page.fill('#gb-message', 'forged');
    const [nav3] = await Promise.all([page.waitForNavigation(), page.click('#gb-submit')]);
    check(nav3 && nav3.status() === 403, `tampered token -> 403 (${nav3 && nav3.status()})`);
    check(/expired/.test(await page.locator('#gb-error').textContent()), 'the 403 page says why');
  } catch (e) {
    h.failException(e);
  }
  return h.finish(ctx, tmp, [page], 'guestbook-browser-failure.png');
}

h.runMain(main);
