// What a browser test of the workbench needs: Debian's chromium through playwright-core (no
// downloaded browser), pages that record CSP violations and page errors, a screenshot and an axe
// check per screen, sign-in, and plain API calls for set-up. Configured from the environment:
// BASE_URL, ARTEFACTS (screenshots), CHROMIUM.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
export const step = (text) => console.log(`step: ${text}`);
export const fail = (text) => {
  throw new Error(text);
};

export class Harness {
  constructor(browser, base, artefacts) {
    this.browser = browser;
    this.base = base;
    this.artefacts = artefacts;
    this.violations = [];
    this.pages = [];
    this.findings = {};
  }

  static async launch() {
    const browser = await chromium.launch({
      executablePath: env("CHROMIUM"),
      headless: true,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    });
    return new Harness(browser, env("BASE_URL"), env("ARTEFACTS"));
  }

  async newPage() {
    const context = await this.browser.newContext({ viewport: { width: 1366, height: 800 }, acceptDownloads: true });
    const page = await context.newPage();
    this.pages.push(page);
    page.on("console", (message) => {
      if (/Content.Security.Policy|Refused to/i.test(message.text())) this.violations.push(message.text());
    });
    page.on("pageerror", (error) => this.violations.push(`page error: ${error.message}`));
    return page;
  }

  /** Screenshot the screen (or one part of it) and check the page with axe: no serious or critical finding. */
  async check(page, name, part = null) {
    if (part) await part.screenshot({ path: join(this.artefacts, `${name}.png`) });
    else await page.screenshot({ path: join(this.artefacts, `${name}.png`), fullPage: true });
    await page.evaluate(AXE);
    const result = await page.evaluate(async () => {
      const outcome = await globalThis.axe.run(document, { resultTypes: ["violations"] });
      return outcome.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    });
    this.findings[name] = result;
    const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
    if (bad.length) fail(`axe on ${name}: ${JSON.stringify(bad, null, 1)}`);
    step(`${name}: screenshot and axe (${result.length} minor findings)`);
  }

  async signIn(page, username, password) {
    await page.goto(`${this.base}/`);
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
  }

  async token(username, password) {
    const answer = await fetch(`${this.base}/api/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username, password }),
    });
    if (!answer.ok) fail(`login ${username}: ${answer.status}`);
    return (await answer.json()).access_token;
  }

  async api(method, path, token, body) {
    const isForm = body instanceof FormData;
    const answer = await fetch(`${this.base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(isForm || body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
    });
    const payload = await answer.json().catch(() => null);
    if (!answer.ok) fail(`${method} ${path}: ${answer.status} ${JSON.stringify(payload)}`);
    return payload;
  }

  /** Run the steps; on failure screenshot every page; always write the axe findings and close. */
  async run(name, steps) {
    try {
      await steps();
      if (this.violations.length) fail(`CSP violations or page errors:\n${this.violations.join("\n")}`);
      console.log(`${name}: every step passed`);
    } catch (error) {
      console.error(error);
      for (const [n, open] of this.pages.entries()) {
        await open.screenshot({ path: join(this.artefacts, `${name}-failure-${n}.png`), fullPage: true }).catch(() => undefined);
      }
      process.exitCode = 1;
    } finally {
      writeFileSync(join(this.artefacts, `${name}-axe.json`), JSON.stringify(this.findings, null, 1));
      await this.browser.close();
    }
  }
}
