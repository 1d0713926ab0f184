// Shared code of the browser tests (tests/integration/test_*_browser.mjs):
// where the build is, loading playwright-core from tests/browser/node_modules,
// launching Debian's /usr/bin/chromium with a throw-away profile (never a
// downloaded browser), starting wharfd and other children (killed on exit,
// also on failure), and screenshots under $WH_BUILD_DIR/test-artifacts/.
// Import it by relative path: `import * as h from '../browser/harness.mjs'`.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository (WH_SOURCE_DIR, else two levels above this file). */
export const SOURCE = process.env.WH_SOURCE_DIR || path.join(here, '../..');
/** The build dir with the binaries (WH_BUILD_DIR, else SOURCE/build). */
export const BUILD = process.env.WH_BUILD_DIR || path.join(SOURCE, 'build');
/** Where failure screenshots go. */
export const ARTIFACTS = path.join(BUILD, 'test-artifacts');
/** The only browser used: Debian's package. */
export const CHROMIUM = '/usr/bin/chromium';

/** playwright-core from WH_PLAYWRIGHT_DIR or tests/browser/node_modules; null if absent. */
export function loadPlaywright() {
  const bases = [path.join(SOURCE, 'tests/browser/'), here + '/'];
  if (process.env.WH_PLAYWRIGHT_DIR) bases.unshift(process.env.WH_PLAYWRIGHT_DIR + '/');
  for (const b of bases) {
    try {
      return createRequire(b + 'package.json')('playwright-core');
    } catch (e) { /* try the next */ }
  }
  return null;
}

/**
 * playwright-core if it and Chromium are installed; else prints SKIP and
 * returns { skip: exit code } (1 under WH_REQUIRE_BROWSER=1, else 0).
 */
export function browserOrSkip() {
  const code = process.env.WH_REQUIRE_BROWSER === '1' ? 1 : 0;
  const pw = loadPlaywright();
  if (!pw) {
    console.log('SKIP: playwright-core not installed in tests/browser (run scripts/deps.sh)');
    return { skip: code };
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log('SKIP: ' + CHROMIUM + ' not installed');
    return { skip: code };
  }
  return { pw };
}

/** A fresh temporary directory named PREFIX*; removed by rmTmp. */
export function makeTmp(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes a directory made by makeTmp. */
export function rmTmp(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

// Every child started through spawnChild, SIGKILLed when this process exits.
const children = [];
/** Kills (SIGKILL) every child still running. */
export function killAll() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { process.kill(c.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
  }
}
process.on('exit', killAll);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { killAll(); process.exit(1); });

/** spawn() whose child is killed on exit (normal, failure or signal). */
export function spawnChild(cmd, args, opts) {
  const c = spawn(cmd, args, opts);
  children.push(c);
  return c;
}

/** SIGTERMs a child and waits for it to exit (at most ms). */
export async function terminate(child, ms = 10000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => { child.once('exit', r); setTimeout(r, ms); });
}

/** A loopback TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
    srv.on('error', reject);
  });
}

/** Resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls async fn every 50 ms until it returns a truthy value (returned); throws after ms. */
export async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error('timed out waiting for ' + what);
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

/**
 * Starts BUILD/wharfd with ARGS plus --error-log LOG (stdio as given) and
 * waits (at most ms) for its "listening on ...:PORT" line; returns
 * { child, port }. Throws if wharfd exits or never listens.
 */
export async function startWharfd(args, log, { ms = 10000, stdio = 'ignore' } = {}) {
  // The guestbook's database: beside the log unless the test names one.
  const data = args.includes('--data') ? [] : ['--data', log + '.data'];
  const child = spawnChild(path.join(BUILD, 'wharfd'), [...args, ...data, '--error-log', log], { stdio });
  const port = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`wharfd exited ${child.exitCode}`);
    try {
      const m = /listening on .*:(\d+)/.exec(fs.readFileSync(log, 'utf8'));
      return m ? Number(m[1]) : null;
    } catch (e) { return null; }
  }, ms, 'wharfd');
  return { child, port };
}

/** Chromium (headless, no sandbox, quiet) on a fresh profile dir (--user-data-dir) PROFILE; EXTRA: more flags. */
export function launchChromium(pw, profile, extra = []) {
  return pw.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extra],
  });
}

/** Saves a full-page screenshot of each page as ARTIFACTS/NAME (name(i) for page i). */
export async function screenshots(pages, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const [i, p] of pages.entries()) {
    const shot = path.join(ARTIFACTS, typeof name === 'function' ? name(i) : name);
    try {
      await p.screenshot({ path: shot, fullPage: true });
      console.log('screenshot: ' + shot);
    } catch (e) { console.log('no screenshot: ' + e); }
  }
}

/** Counts failed checks; check() prints "ok"/"FAIL" and the description. */
export const result = { failures: 0 };
/** Prints one check's outcome, counts it if it failed; returns cond. */
export function check(cond, what) {
  console.log((cond ? '  ok   ' : '  FAIL ') + what);
  if (!cond) result.failures++;
  return cond;
}

/** Counts exception E as a failed check and prints its stack. */
export function failException(e) {
  result.failures++;
  console.log('  FAIL exception: ' + (e && e.stack || e));
}

/**
 * End of a test: screenshots PAGES as SHOT (see screenshots) if a check
 * failed, closes the browser CTX, kills the children, removes TMP, prints
 * the verdict; returns the exit code.
 */
export async function finish(ctx, tmp, pages, shot) {
  if (result.failures) await screenshots(pages, shot);
  await ctx.close();
  killAll();
  rmTmp(tmp);
  console.log(result.failures ? `${result.failures} check(s) failed` : 'all checks passed');
  return result.failures ? 1 : 0;
}

/** Runs async main() and exits with the code it returns (1 and the error if it throws). */
export function runMain(main) {
  main().then((code) => process.exit(code), (e) => {
    console.log('FAIL ' + (e && e.stack || e));
    killAll();
    process.exit(1);
  });
}
