// The web console in a real browser: Debian's chromium, headless, driven by playwright-core.
// tests/console.rs runs one scenario per call: `node console.mjs SCENARIO`, its inputs in the
// environment (UI_*). A scenario prints what it saw as JSON lines and exits 1 on the first
// thing that is not as expected. The server's TLS certificate is trusted by its SPKI hash only
// (--ignore-certificate-errors-spki-list), not by ignoring certificate errors.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const env = process.env;
const base = env.UI_URL;
const axeSource = fs.readFileSync(
  new URL('./node_modules/axe-core/axe.min.js', import.meta.url),
  'utf8',
);

function fail(msg) {
  console.error(`console test: ${msg}`);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}
function say(what, detail = {}) {
  console.log(JSON.stringify({ what, ...detail }));
}
const list = (name) => (env[name] ? JSON.parse(env[name]) : []);

async function launch() {
  return chromium.launch({
    executablePath: env.UI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${env.UI_SPKI}`,
    ],
  });
}

/// A new page, with every script error and dialog recorded (none may happen).
async function newPage(browser, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('dialog', async (d) => {
    page.errors.push(`dialog: ${d.message()}`);
    await d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
  });
  return page;
}

/// Signs in with the token through the form, by keyboard; lands on Requests.
async function signIn(page, token) {
  const r = await page.goto(`${base}/ui/`);
  check(r.ok(), `GET /ui/ answered ${r.status()}`);
  check(page.url().endsWith('/ui/login'), `not sent to sign in: ${page.url()}`);
  await page.getByLabel('Token').fill(token);
  await page.getByLabel('Token').press('Enter');
  await page.waitForURL('**/ui/requests');
  const cookies = await page.context().cookies();
  const c = cookies.find((c) => c.name === '__Host-hallmark_session');
  check(c, 'no session cookie');
  check(c.httpOnly && c.secure && c.sameSite === 'Strict', `cookie flags: ${JSON.stringify(c)}`);
  say('signed-in', { url: page.url() });
}

function card(page, kind, id) {
  const prefix = kind === 'signature' ? 'sig' : 'cert';
  return page.locator(`section[aria-labelledby="${prefix}-${id}"]`);
}

async function noScriptRan(page) {
  const pwned = await page.evaluate(() => window.__pwned);
  check(pwned === undefined, `a script from a request ran: window.__pwned = ${pwned}`);
  check(page.errors.length === 0, `script errors or dialogs: ${page.errors.join(' | ')}`);
}

/// How words and serials wrap on the page: every key label, profile and file name (code.label,
/// code.file) breaks only between words (never between two letters or digits: no "releas/e"),
/// and every serial (code.serial) is on one line; their computed styles say so too. Returns how
/// many of each were checked.
async function wrapping(page, where) {
  const seen = await page.evaluate(() => {
    const word = /[\p{L}\p{N}]/u;
    const out = { words: 0, serials: 0, bad: [] };
    for (const el of document.querySelectorAll('main code.label, main code.file')) {
      out.words += 1;
      const cs = getComputedStyle(el);
      if (cs.overflowWrap === 'anywhere' || cs.wordBreak === 'break-all' || cs.wordBreak === 'break-word') {
        out.bad.push(`${el.textContent}: overflow-wrap ${cs.overflowWrap}, word-break ${cs.wordBreak}`);
      }
      // Each character's line, from its own box: a new line starting between two word
      // characters is a break in the middle of a word.
      const range = document.createRange();
      const chars = [];
      const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      while (walk.nextNode()) {
        const n = walk.currentNode;
        for (let i = 0; i < n.length; i++) {
          range.setStart(n, i);
          range.setEnd(n, i + 1);
          const r = range.getClientRects()[0];
          if (r) chars.push({ c: n.data[i], top: r.top, height: r.height });
        }
      }
      for (let i = 1; i < chars.length; i++) {
        const a = chars[i - 1];
        const b = chars[i];
        if (b.top > a.top + a.height / 2 && word.test(a.c) && word.test(b.c)) {
          const t = chars.map((x) => x.c).join('');
          out.bad.push(`'${t.slice(0, i)}/${t.slice(i)}' breaks in the middle of a word`);
        }
      }
    }
    for (const el of document.querySelectorAll('main code.serial')) {
      out.serials += 1;
      const cs = getComputedStyle(el);
      if (cs.whiteSpace !== 'nowrap') out.bad.push(`serial ${el.textContent}: white-space ${cs.whiteSpace}`);
      if (el.getClientRects().length !== 1) out.bad.push(`serial ${el.textContent} is on ${el.getClientRects().length} lines`);
    }
    return out;
  });
  check(seen.bad.length === 0, `${where}: ${seen.bad.join('; ')}`);
  return seen;
}

async function waitForLine() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

const scenarios = {
  // Sign in, check the request card shows every UI_EXPECT text, then decide it.
  async decide(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const c = card(page, env.UI_KIND, env.UI_ID);
    check((await c.count()) === 1, `request ${env.UI_KIND} ${env.UI_ID} is not on the page`);
    const text = await c.innerText();
    for (const want of list('UI_EXPECT')) {
      check(text.includes(want), `request card lacks '${want}':\n${text}`);
    }
    say('card', { text });
    await c.getByLabel('Comment (optional)').fill(env.UI_COMMENT || '');
    const button = env.UI_DECISION === 'deny' ? 'Deny' : 'Approve';
    await c.getByRole('button', { name: button }).click();
    // done=approve, or done=signed / done=issued when this approval completed the request.
    await page.waitForURL('**/ui/requests?done=**');
    const flash = await page.locator('p.flash').innerText();
    const says = env.UI_FLASH || 'Your approval was recorded.';
    check(flash.includes(env.UI_DECISION === 'deny' ? 'Your denial was recorded.' : says), `the confirmation does not say '${says}': ${flash}`);
    say('decided', { decision: env.UI_DECISION, flash });
    await noScriptRan(page);
  },

  // The requester sees its own request but no way to approve it.
  async own(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const c = card(page, env.UI_KIND, env.UI_ID);
    check((await c.count()) === 1, `own request ${env.UI_ID} is not shown`);
    check((await c.getByRole('button', { name: 'Approve' }).count()) === 0, 'an Approve button on the requester\'s own request');
    const text = await c.innerText();
    check(text.includes('You asked for this'), `no note for the requester: ${text}`);
    say('own', { text });
  },

  // Pages with hostile values from requests: rendered as text, no script runs, CSP present.
  async xss(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    for (const p of list('UI_PAGES')) {
      const r = await page.goto(`${base}${p}`);
      check(r.status() === 200, `${p}: ${r.status()}`);
      const csp = r.headers()['content-security-policy'] || '';
      check(csp.includes("default-src 'none'") && csp.includes("frame-ancestors 'none'"), `${p}: CSP '${csp}'`);
      check(!csp.includes('unsafe-inline'), `${p}: CSP allows inline code: ${csp}`);
      const body = await page.locator('main').innerText();
      for (const want of list('UI_EXPECT')) {
        check(body.includes(want), `${p}: '${want}' is not shown as text:\n${body}`);
      }
      const injected = await page.locator('main img, main script, main [onerror]').count();
      check(injected === 0, `${p}: ${injected} elements from request values`);
      await page.waitForTimeout(300);
      await noScriptRan(page);
      say('xss-safe', { page: p, csp });
    }
  },

  // State-changing posts without the CSRF token, or from another origin, are refused.
  async csrf(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const c = card(page, env.UI_KIND, env.UI_ID);
    check((await c.count()) === 1, `request ${env.UI_ID} is not on the page`);
    const token = await c.locator('input[name=csrf]').inputValue();
    const action = `${base}/ui/requests/${env.UI_KIND}/${env.UI_ID}`;
    // Same-origin posts from the page itself: a form built in the page and submitted by the
    // browser (it sends the cookie and its own Origin).
    const post = async (fields) => {
      await page.goto(`${base}/ui/requests`);
      const [resp] = await Promise.all([
        page.waitForNavigation(),
        page.evaluate(([url, f]) => {
          const form = document.createElement('form');
          form.method = 'post';
          form.action = url;
          for (const [k, v] of Object.entries(f)) {
            const i = document.createElement('input');
            i.name = k;
            i.value = v;
            form.appendChild(i);
          }
          document.body.appendChild(form);
          form.submit();
        }, [action, fields]),
      ]);
      return resp.status();
    };
    let status = await post({ decision: 'approve', comment: 'no token' });
    check(status === 403, `a post without the CSRF token answered ${status}`);
    say('no-token', { status });
    status = await post({ csrf: 'f'.repeat(32), decision: 'approve' });
    check(status === 403, `a post with a wrong CSRF token answered ${status}`);
    say('wrong-token', { status });
    // A real cross-site form, submitted by the browser from another origin: the SameSite=Strict
    // cookie is not sent, so it reaches no session.
    const evil = await page.context().newPage();
    await evil.setContent(`<form method="post" action="${action}"><input name="csrf" value="${token}"><input name="decision" value="approve"><button>go</button></form>`);
    const [resp] = await Promise.all([
      evil.waitForNavigation(),
      evil.click('button'),
    ]);
    const landed = evil.url();
    check(landed.includes('/ui/login') || resp.status() === 403, `a cross-site form reached ${landed} (${resp.status()})`);
    say('cross-site-form', { landed, status: resp.status() });
    // The session outlived the cross-site post (nothing cleared its cookie); its cookie and
    // CSRF token, for the test to post with from another origin.
    const cookie = (await page.context().cookies()).find((c) => c.name === '__Host-hallmark_session');
    check(cookie && cookie.value, 'a cross-site post ended the session');
    await page.goto(`${base}/ui/requests`);
    check(page.url().endsWith('/ui/requests'), `signed out by a cross-site post: ${page.url()}`);
    say('session', { cookie: cookie.value, csrf: token });
  },

  // Signs in, says READY, waits for a line on stdin (the test ages or revokes meanwhile), then
  // reloads and expects the sign-in page with UI_ENDED's text.
  async ended(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    say('ready');
    await waitForLine();
    await page.goto(`${base}/ui/requests`);
    check(page.url().includes('/ui/login'), `still signed in: ${page.url()}`);
    const text = await page.locator('main').innerText();
    check(text.includes(env.UI_ENDED), `the sign-in page does not say '${env.UI_ENDED}': ${text}`);
    // The cookie went with the session.
    const cookies = await page.context().cookies();
    check(!cookies.some((c) => c.name === '__Host-hallmark_session' && c.value), 'the cookie is still set');
    say('ended', { url: page.url() });
  },

  // What a person sees: UI_SEE ids are on Requests, UI_HIDDEN are not; UI_NOT_FOUND paths are
  // 404 (another publisher's records answer as if they did not exist).
  async visible(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    for (const id of list('UI_SEE')) {
      check((await page.locator(`section[aria-labelledby="${id}"]`).count()) === 1, `${id} is not shown`);
    }
    for (const id of list('UI_HIDDEN')) {
      check((await page.locator(`[id="${id}"]`).count()) === 0, `${id} is shown to someone who may not see it`);
    }
    const main = await page.locator('main').innerText();
    for (const t of list('UI_HIDDEN_TEXT')) {
      check(!main.includes(t), `'${t}' is shown to someone who may not see it`);
    }
    for (const p of list('UI_NOT_FOUND')) {
      const r = await page.goto(`${base}${p}`);
      check(r.status() === 404, `${p} answered ${r.status()}`);
      const t = await page.locator('main').innerText();
      for (const h of list('UI_HIDDEN_TEXT')) check(!t.includes(h), `${p} shows '${h}'`);
    }
    say('visible', {});
  },

  // Signs in through the identity provider (the login page's button, the provider's redirect
  // back), lands signed in as UI_EXPECT_NAME, and approves request UI_KIND UI_ID.
  async idp(browser) {
    const page = await newPage(browser);
    await page.goto(`${base}/ui/login`);
    const trail = [];
    page.on('response', (r) => trail.push(`${r.status()} ${r.url()}`));
    await page.getByRole('link', { name: `Sign in with ${env.UI_PROVIDER}` }).click();
    try {
      await page.waitForURL('**/ui/requests', { timeout: 15000 });
    } catch (e) {
      fail(`not signed in: at ${page.url()} after ${trail.join(' -> ')}:\n${await page.locator('body').innerText()}`);
    }
    const who = await page.locator('header .who').innerText();
    check(who.includes(env.UI_EXPECT_NAME), `signed in as '${who}'`);
    const cookies = await page.context().cookies();
    const c = cookies.find((c) => c.name === '__Host-hallmark_session');
    check(c && c.httpOnly && c.secure && c.sameSite === 'Strict', `cookie: ${JSON.stringify(c)}`);
    check(!cookies.some((c) => c.name === '__Host-hallmark_login' && c.value), 'the sign-in flow cookie outlived the sign-in');
    say('signed-in', { who });
    const card_ = card(page, env.UI_KIND, env.UI_ID);
    await card_.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL('**/ui/requests?done=approve');
    say('approved', {});
    await noScriptRan(page);
  },

  // The provider signs someone in whom the console refuses: the page says UI_SAYS.
  async 'idp-refused'(browser) {
    const page = await newPage(browser);
    await page.goto(`${base}/ui/login`);
    await page.getByRole('link', { name: `Sign in with ${env.UI_PROVIDER}` }).click();
    await page.waitForURL('**/ui/login/callback**');
    const text = await page.locator('main').innerText();
    check(text.includes(env.UI_SAYS), `the refusal does not say '${env.UI_SAYS}': ${text}`);
    const cookies = await page.context().cookies();
    check(!cookies.some((c) => c.name === '__Host-hallmark_session'), 'a session cookie after a refused sign-in');
    say('refused', {});
  },

  // The security headers on a page, then Sign out: the sign-in page says so, and the old
  // cookie no longer opens a page.
  async logout(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const r = await page.goto(`${base}/ui/requests`);
    const h = r.headers();
    check(h['strict-transport-security'] && h['strict-transport-security'].includes('max-age='), `HSTS: ${h['strict-transport-security']}`);
    check(h['x-frame-options'] === 'DENY', `X-Frame-Options: ${h['x-frame-options']}`);
    check(h['referrer-policy'] === 'no-referrer', `Referrer-Policy: ${h['referrer-policy']}`);
    check((h['cache-control'] || '').includes('no-store'), `Cache-Control: ${h['cache-control']}`);
    check((h['content-security-policy'] || '').includes("frame-ancestors 'none'"), 'CSP');
    const old = (await page.context().cookies()).find((c) => c.name === '__Host-hallmark_session');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/ui/login?ended=out');
    const text = await page.locator('main').innerText();
    check(text.includes('You signed out'), `no sign-out message: ${text}`);
    // The cookie the browser held before no longer opens a page (the session is gone).
    await page.context().addCookies([{ ...old }]);
    await page.goto(`${base}/ui/requests`);
    check(page.url().includes('/ui/login'), `the old cookie still opens ${page.url()}`);
    say('signed-out', {});
  },

  // Revokes a certificate through the form and its confirmation.
  async revoke(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    await page.goto(`${base}/ui/certificates/${env.UI_SERIAL}`);
    await page.getByLabel('Reason').selectOption(env.UI_REASON);
    await page.getByRole('button', { name: 'Revoke…' }).click();
    await page.waitForURL('**/revoke');
    const text = await page.locator('main').innerText();
    check(text.includes('cannot be undone') && text.includes(env.UI_REASON), `no confirmation step: ${text}`);
    say('confirm', {});
    await page.getByRole('button', { name: 'Yes, revoke it' }).click();
    await page.waitForURL(`**/ui/certificates/${env.UI_SERIAL}?revoked=1`);
    const after = await page.locator('main').innerText();
    check(after.includes('revoked') && after.includes(env.UI_REASON), `not shown revoked: ${after}`);
    say('revoked', {});
  },

  // Every page: axe-core finds no serious or critical violation, at 1280 px and phone width;
  // the first Tab reaches the skip link; screenshots into UI_SCREENSHOTS.
  async tour(browser) {
    const pages = list('UI_PAGES');
    const dir = env.UI_SCREENSHOTS;
    if (dir) fs.mkdirSync(dir, { recursive: true });
    for (const [label, viewport] of [['', { width: 1280, height: 900 }], ['-phone', { width: 390, height: 844 }]]) {
      const page = await newPage(browser, viewport);
      if (dir && !label) {
        await page.goto(`${base}/ui/login`);
        await page.screenshot({ path: path.join(dir, 'sign-in.png'), fullPage: true });
      }
      await signIn(page, env.UI_TOKEN);
      for (const p of pages) {
        const r = await page.goto(`${base}${p}`);
        check(r.status() === 200, `${p}: ${r.status()}`);
        if (dir) {
          const name = p.replace('/ui/', '').replace(/\//g, '-') || 'requests';
          await page.screenshot({ path: path.join(dir, `${name}${label}.png`), fullPage: false });
        }
        await page.keyboard.press('Tab');
        const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
        check(focused === 'Skip to content', `${p}: the first Tab reaches '${focused}'`);
        await page.evaluate(axeSource);
        const result = await page.evaluate(async () => {
          const r = await window.axe.run(document, { resultTypes: ['violations'] });
          return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
        });
        const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        check(bad.length === 0, `${p}${label}: axe: ${JSON.stringify(bad)}`);
        // No horizontal scrolling of the page itself (wide tables scroll in their own region).
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        check(overflow <= 1, `${p}${label}: the page is ${overflow}px wider than the screen`);
        const wrapped = await wrapping(page, `${p}${label}`);
        await noScriptRan(page);
        say('page', { page: p, viewport: viewport.width, axe: result, words: wrapped.words, serials: wrapped.serials });
      }
    }
  },

  // The Keys and Stations charts name their time axis: the first, middle and last day (Keys:
  // 30 days) or hour (Stations: 24 hours), in UTC, as text in the SVG and in its label.
  async charts(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const day = (t) => new Date(t).toISOString().slice(0, 10);
    const hour = (t) => {
      const s = new Date(t).toISOString();
      return `${s.slice(5, 10)} ${s.slice(11, 13)}:00`;
    };
    for (const [p, period, periods, fmt] of [
      ['/ui/keys', 86400000, 30, day],
      ['/ui/stations', 3600000, 24, hour],
    ]) {
      const before = Date.now();
      await page.goto(`${base}${p}`);
      const after = Date.now();
      const charts = page.locator('svg.chart');
      check((await charts.count()) > 0, `${p}: no chart`);
      const ticks = await charts.first().locator('text').allTextContents();
      const aria = (await charts.first().getAttribute('aria-label')) || '';
      // The labels expected at either end of the page's load (a period may have turned).
      const want = (t) => {
        const last = Math.floor(t / period) * period;
        const first = last - (periods - 1) * period;
        const middle = first + Math.floor((periods - 1) / 2) * period;
        return [fmt(first), fmt(middle), fmt(last)];
      };
      const ok = [want(before), want(after)].some(
        (w) => JSON.stringify(w) === JSON.stringify(ticks) && aria.includes(`from ${w[0]} to ${w[2]}`),
      );
      check(ok, `${p}: the chart's axis says ${JSON.stringify(ticks)} and its label '${aria}'; expected ${JSON.stringify(want(after))}`);
      // Drawn, and inside the chart: not just in the markup.
      const box = await charts.first().boundingBox();
      for (const t of await charts.first().locator('text').all()) {
        const b = await t.boundingBox();
        check(b && b.width > 0 && b.height > 0, `${p}: the label '${await t.textContent()}' is not drawn`);
        check(b.x >= box.x - 1 && b.x + b.width <= box.x + box.width + 1 && b.y + b.height <= box.y + box.height + 1,
          `${p}: the label '${await t.textContent()}' (${JSON.stringify(b)}) is outside its chart (${JSON.stringify(box)})`);
      }
      const note = await page.locator('svg.chart + span.note').first().innerText();
      check(note.includes(ticks[0]) && note.includes(ticks[2]), `${p}: the chart's caption '${note}'`);
      say('chart', { page: p, ticks, aria });
    }
  },

  // The search forms offer choices, not free text, for what has a closed set of values:
  // UI_CHOICES maps each page to {select id: [values it must offer]}. On each page the first
  // select's second choice is picked and the form sent: the page shows it still chosen.
  async filters(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const choices = JSON.parse(env.UI_CHOICES);
    for (const [p, selects] of Object.entries(choices)) {
      await page.goto(`${base}${p}`);
      for (const [id, values] of Object.entries(selects)) {
        const el = page.locator(`form.search #${id}`);
        check((await el.count()) === 1, `${p}: no filter #${id}`);
        const tag = await el.evaluate((e) => e.tagName);
        check(tag === 'SELECT', `${p}: the filter #${id} is a ${tag}, not a choice`);
        const offered = await el.locator('option').evaluateAll((os) => os.map((o) => o.value));
        for (const v of values) check(offered.includes(v), `${p}: #${id} does not offer '${v}': ${JSON.stringify(offered)}`);
        say('choice', { page: p, id, offered });
      }
      const [id, values] = Object.entries(selects)[0];
      await page.locator(`form.search #${id}`).selectOption(values[0]);
      await page.locator('form.search button[type=submit]').click();
      await page.waitForURL(`**${p}?**`);
      check(page.url().includes(`${id}=${encodeURIComponent(values[0])}`), `${p}: the form sent ${page.url()}`);
      const chosen = await page.locator(`form.search #${id}`).inputValue();
      check(chosen === values[0], `${p}: after filtering, #${id} shows '${chosen}'`);
      say('filtered', { page: p, id, value: chosen });
    }
  },

  // A certificate's page: its SHA-256 fingerprint, and its PEM downloaded through the page's
  // link into UI_OUT; at phone width its serial is
  // one line and the page does not scroll sideways.
  async certificate(browser) {
    const page = await newPage(browser);
    await signIn(page, env.UI_TOKEN);
    const url = `${base}/ui/certificates/${env.UI_SERIAL}`;
    await page.goto(url);
    const fingerprint = (await page.locator('dt:text-is("SHA-256 fingerprint") + dd').innerText()).trim();
    const link = page.getByRole('link', { name: 'Download the certificate (PEM)' });
    const href = await link.getAttribute('href');
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    await download.saveAs(env.UI_OUT);
    say('certificate', { fingerprint, href, file: download.suggestedFilename() });
    const phone = await newPage(browser, { width: 390, height: 844 });
    await signIn(phone, env.UI_TOKEN);
    await phone.goto(url);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `${url} at 390 px: the page is ${overflow}px wider than the screen`);
    const wrapped = await wrapping(phone, `${url} at 390 px`);
    check(wrapped.serials > 0, `${url}: no serial checked`);
    await noScriptRan(page);
    await noScriptRan(phone);
  },
};

const name = process.argv[2];
const scenario = scenarios[name];
if (!scenario) fail(`no scenario '${name}' (${Object.keys(scenarios).join(', ')})`);
const browser = await launch();
try {
  await scenario(browser);
} catch (e) {
  await browser.close();
  fail(`${name}: ${e.stack || e}`);
}
await browser.close();
