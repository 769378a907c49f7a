// Drive the system Chromium (Debian's /usr/bin/chromium) with puppeteer-core, with every request
// to a host other than this machine blocked (the book must work offline). tests/test_browser.py
// runs one command per check and reads the JSON printed on stdout.
//
//   node tools/browser.mjs live URL OUT.png     the live page: wait for data-status "done" (or
//                                               "error"), save <img id="fomm-result"> to OUT.png
//   node tools/browser.mjs math URL             typeset math: raw TeX delimiters left, MathJax
//                                               containers
//   node tools/browser.mjs figures URL...       every interactive static figure: does its image
//                                               change when its control changes?
//   node tools/browser.mjs status URL           data-status and visible text (file:// check)
//   node tools/browser.mjs screenshot URL OUT.png [WIDTH HEIGHT]
//
// CHROMIUM overrides the browser's path.
import { writeFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const TIMEOUT_MS = 180_000;
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

function launch() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ARGS,
  });
}

// A new tab of `browser` at `url`, requests off this machine aborted (and listed in `blocked`).
async function openTab(browser, url, { width = 1100, height = 900 } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  const blocked = [];
  const consoleErrors = [];
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const target = new URL(request.url());
    const local =
      ["data:", "blob:", "file:"].includes(target.protocol) || LOCAL_HOSTS.has(target.hostname);
    if (local) request.continue();
    else {
      blocked.push(request.url());
      request.abort("internetdisconnected");
    }
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  await page.goto(url, { waitUntil: "load", timeout: TIMEOUT_MS });
  return { page, blocked, consoleErrors };
}

async function openPage(url, viewport) {
  const browser = await launch();
  try {
    return { browser, ...(await openTab(browser, url, viewport)) };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

async function waitForStatus(page, statuses) {
  await page.waitForFunction(
    (wanted) => wanted.includes(document.body.dataset.status),
    { timeout: TIMEOUT_MS, polling: 100 },
    statuses,
  );
}

async function figuresOf(page) {
  const selector = ".fomm-static-figure, [data-interactive]";
  await page
    .waitForFunction(
      (sel) => [...document.querySelectorAll(sel)].every((f) => f.dataset.ready === "1"),
      { timeout: 10_000 },
      selector,
    )
    .catch(() => {}); // a figure whose script never ran is reported below (no control)
  const figures = await page.$$(selector);
  const results = [];
  for (const figure of figures) {
    // What the reader sees: the visible images (label and a digest of their pixels).
    const shown = () =>
      figure.$$eval("img", (images) =>
        images
          .filter((i) => i.offsetParent !== null)
          .map((i) => `${i.dataset.label ?? ""}|${i.src.length}|${i.src.slice(-48)}`)
          .join(" "),
      );
    const id = await figure.evaluate((f) => f.id || f.className);
    const ranges = await figure.$$('input[type="range"]');
    const buttons = await figure.$$("button");
    const states = [];
    for (const range of ranges) {
      const values = await range.evaluate((r) => {
        const out = [];
        const step = Number(r.step) || 1;
        for (let v = Number(r.min || 0); v <= Number(r.max || 100) + 1e-9; v += step) {
          out.push(String(v));
        }
        return out;
      });
      for (const value of values) {
        await range.evaluate((r, v) => {
          r.value = v;
          r.dispatchEvent(new Event("input", { bubbles: true }));
          r.dispatchEvent(new Event("change", { bubbles: true }));
        }, value);
        states.push({ control: `range=${value}`, shown: await shown() });
      }
    }
    for (const [i, button] of buttons.entries()) {
      await button.click();
      states.push({ control: `button ${i}`, shown: await shown() });
    }
    results.push({
      id,
      controls: ranges.length + buttons.length,
      states: states.length,
      distinct: new Set(states.map((s) => s.shown)).size,
      empty: states.filter((s) => !s.shown).length,
    });
  }
  return results;
}

const commands = {
  async live(url, out) {
    const { browser, page, blocked, consoleErrors } = await openPage(url);
    try {
      await waitForStatus(page, ["done", "error", "needs-server"]);
      const result = await page.evaluate(() => ({
        status: document.body.dataset.status,
        error: document.body.dataset.error ?? null,
        fps: Number(document.body.dataset.fps ?? NaN),
        loadSeconds: Number(document.body.dataset.loadSeconds ?? NaN),
        progress: document.getElementById("progress").textContent,
        src: document.getElementById("fomm-result").getAttribute("src") ?? "",
      }));
      const prefix = "data:image/png;base64,";
      if (result.src.startsWith(prefix)) {
        writeFileSync(out, Buffer.from(result.src.slice(prefix.length), "base64"));
      }
      delete result.src;
      return { ...result, blocked, consoleErrors };
    } finally {
      await browser.close();
    }
  },

  async math(url) {
    const { browser, page, blocked } = await openPage(url);
    try {
      // MathJax 3 resolves this promise when the page's first typesetting pass is done.
      // (A promise is returned wrapped: waitForFunction would wait for it to resolve truthy.)
      await page.waitForFunction(() => Boolean(window.MathJax?.startup?.promise), {
        timeout: TIMEOUT_MS,
      });
      await page.evaluate(() => window.MathJax.startup.promise.then(() => true));
      const result = await page.evaluate(() => {
        // The prose and outputs, without code (whose strings may hold a backslash-paren).
        const article = (document.querySelector("article") ?? document.body).cloneNode(true);
        for (const code of article.querySelectorAll("pre, code")) code.remove();
        document.body.appendChild(article);
        const text = article.innerText;
        article.remove();
        const raw = (text.match(/\\\(|\\\)|\\\[|\\\]|\$\$/g) ?? []).length;
        return {
          raw,
          rawSample: (text.match(/.{0,40}(\\\(|\\\[|\$\$).{0,40}/) ?? [""])[0],
          containers: document.querySelectorAll("mjx-container").length,
          errors: document.querySelectorAll("mjx-merror").length,
          version: window.MathJax.version,
        };
      });
      return { ...result, blocked };
    } finally {
      await browser.close();
    }
  },

  // Every interactive static figure (fomm_tutorial.display.static_slider:
  // div.fomm-static-figure > img.fomm-frame, one shown at a time, and a range input or buttons
  // that its inline script builds, then marks data-ready="1"): move the control through every
  // setting and record which image is shown at each. [data-interactive] marks any other kind.
  async figures(...urls) {
    const browser = await launch();
    const pages = [];
    try {
      for (const url of urls) {
        const { page, blocked, consoleErrors } = await openTab(browser, url);
        pages.push({ url, figures: await figuresOf(page), blocked, consoleErrors });
        await page.close();
      }
      return { pages };
    } finally {
      await browser.close();
    }
  },

  async status(url) {
    const { browser, page, blocked } = await openPage(url);
    try {
      await page.waitForFunction(() => document.body.dataset.status !== "loading", {
        timeout: 30_000,
      }).catch(() => {});
      const result = await page.evaluate(() => ({
        status: document.body.dataset.status,
        text: document.body.innerText,
      }));
      return { ...result, blocked };
    } finally {
      await browser.close();
    }
  },

  async screenshot(url, out, width = "1100", height = "1000") {
    const { browser, page, blocked } = await openPage(url, {
      width: Number(width),
      height: Number(height),
    });
    try {
      await waitForStatus(page, ["done", "error", "needs-server"]).catch(() => {});
      await page.screenshot({ path: out, fullPage: true });
      return { out, blocked };
    } finally {
      await browser.close();
    }
  },
};

const [name, ...rest] = process.argv.slice(2);
if (!commands[name]) {
  console.error(`usage: node tools/browser.mjs {${Object.keys(commands).join(",")}} URL ...`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await commands[name](...rest)));
} catch (error) {
  console.error(`browser.mjs ${name}: ${error.message || error}`);
  process.exit(1);
}
