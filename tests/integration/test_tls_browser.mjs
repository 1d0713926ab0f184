// Headless Chromium over HTTPS: wharfd serves public/ on an https://
// listener with a certificate this test makes (openssl); Chromium trusts
// exactly that key (--ignore-certificate-errors-spki-list with its SPKI
// hash, nothing else). The home page loads over TLS, and the chat page,
// loaded over https, connects its WebSocket with wss:// (a ws:// one would
// be blocked as mixed content): two tabs see each other's message. The
// access log's TLS field shows the upgrade went over TLS.
//
// WH_TEST_LABELS: tls
import { execFileSync, execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as h from '../browser/harness.mjs';

const { check, waitFor } = h;

async function main() {
  const { pw, skip } = h.browserOrSkip();
  if (!pw) return skip;
  const tmp = h.makeTmp('wh-tls-browser-');
  const crt = path.join(tmp, 'cert.pem');
  const key = path.join(tmp, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', key, '-out', crt], { stdio: 'ignore' });
  const spki = execSync(`openssl x509 -pubkey -noout -in ${crt} | openssl pkey -pubin -outform der` +
    ' | openssl dgst -sha256 -binary | base64').toString().trim();
  const alog = path.join(tmp, 'access.log');
  const { child, port } = await h.startWharfd(['--bind', 'https://127.0.0.1:0', '--threads', '2',
    '--root', path.join(h.SOURCE, 'public'), '--tls-cert', crt, '--tls-key', key,
    '--access-log', alog, '--access-log-tls'], path.join(tmp, 'wharfd.log'));
  console.log(`wharfd (TLS) on ${port}`);
  const ctx = await h.launchChromium(pw, path.join(tmp, 'profile'),
    [`--ignore-certificate-errors-spki-list=${spki}`]);
  const pages = [];
  try {
    const a = ctx.pages()[0] || await ctx.newPage();
    pages.push(a);
    a.setDefaultTimeout(10000);
    const resp = await a.goto(`https://127.0.0.1:${port}/`);
    check(resp.status() === 200, 'GET / over https is 200');
    const sec = await resp.securityDetails();
    check(sec && /TLS 1\.[23]/.test(sec.protocol), `security details: ${sec && sec.protocol}`);
    const b = await ctx.newPage();
    pages.push(b);
    b.setDefaultTimeout(10000);
    for (const p of pages) {
      await p.goto(`https://127.0.0.1:${port}/chat.html`);
      await p.waitForSelector('#status.open');
    }
    check(true, 'chat over https: both tabs connected (wss://)');
    await a.fill('#name', 'alice');
    await a.fill('#text', 'over wss');
    await a.click('#send');
    for (const p of pages) {
      await waitFor(async () => (await p.$$eval('#messages li .text',
        (els) => els.map((e) => e.textContent))).includes('over wss'), 10000, 'message');
    }
    check(true, 'a message sent over wss reaches both tabs');
  } catch (e) {
    h.failException(e);
  }
  await h.terminate(child);
  const log = fs.existsSync(alog) ? fs.readFileSync(alog, 'utf8') : '';
  check(/"GET \/ws\/chat HTTP\/1\.1" 101 .* TLSv1\.3\/\S+$/m.test(log),
    'access log: the chat upgrade (101) went over TLS 1.3');
  return h.finish(ctx, tmp, pages, (i) => `tls-browser-failure-${i}.png`);
}

h.runMain(main);
