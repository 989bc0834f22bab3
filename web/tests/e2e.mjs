// The workbench end to end in Debian's chromium (playwright-core, no downloaded browser) against a
// running gateway: BASE_URL, ADMIN_USER/ADMIN_PASSWORD, TAPE (a .csv), ARTEFACTS (screenshots),
// CHROMIUM. Playwright gives the browser a fresh --user-data-dir of its own (it refuses one in
// args). Exits non-zero on the first failed step.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const ARTEFACTS = env("ARTEFACTS");
const step = (text) => console.log(`step: ${text}`);
const fail = (text) => {
  throw new Error(text);
};

async function api(method, path, token, body) {
  const answer = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await answer.json().catch(() => null);
  if (!answer.ok) fail(`${method} ${path}: ${answer.status} ${JSON.stringify(payload)}`);
  return payload;
}

async function token(username, password) {
  const answer = await fetch(`${BASE}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username, password }),
  });
  if (!answer.ok) fail(`login ${username}: ${answer.status}`);
  return (await answer.json()).access_token;
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const violations = [];
const pages = [];
const findings = {};

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  pages.push(page);
  page.on("console", (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  page.on("pageerror", (error) => violations.push(`page error: ${error.message}`));
  return page;
}

/** Screenshot the screen and check it with axe: no serious or critical finding. */
async function check(page, name) {
  await page.screenshot({ path: join(ARTEFACTS, `${name}.png`), fullPage: true });
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const outcome = await globalThis.axe.run(document, { resultTypes: ["violations"] });
    return outcome.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  findings[name] = result;
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) fail(`axe on ${name}: ${JSON.stringify(bad, null, 1)}`);
  step(`${name}: screenshot and axe (${result.length} minor findings)`);
}

async function signIn(page, username, password) {
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

try {
  const admin = env("ADMIN_USER");
  const adminPassword = env("ADMIN_PASSWORD");
  const page = await newPage();

  step("the login screen, a refused login shows the API's message");
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").waitFor();
  await check(page, "login");
  await page.getByLabel("Username").fill(admin);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  step(`refused: ${await page.getByRole("alert").textContent()}`);

  step("log in as admin");
  await signIn(page, admin, adminPassword);

  step("upload a tape and start a run");
  await page.getByLabel("Tape (.csv or .xlsx)").setInputFiles(env("TAPE"));
  await page.getByLabel("Folder").fill("browser-tapes");
  await page.getByRole("button", { name: "Upload and start run" }).click();
  const started = page.getByRole("status").filter({ hasText: "requested" });
  await started.waitFor({ timeout: 30_000 });
  const startedId = (await started.getByRole("link").textContent()).trim();
  await page.locator("tbody").getByRole("link", { name: new RegExp(`^Run ${startedId}`) }).waitFor({ timeout: 30_000 });
  await check(page, "runs");
  await started.getByRole("link").click();

  step("watch the run complete");
  await page.getByRole("heading", { level: 1, name: /Run / }).waitFor();
  const runId = page.url().split("/runs/")[1];
  await page.locator("h1 .badge", { hasText: "completed" }).waitFor({ timeout: 240_000 });
  await page.getByRole("heading", { name: "Reports" }).waitFor();
  await page.getByRole("button", { name: /^Download / }).first().waitFor();
  await page.locator("table").last().locator("tbody tr").first().waitFor();
  await check(page, "run-detail");

  step("download a report");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: /^Download / }).first().click(),
  ]);
  const saved = join(ARTEFACTS, download.suggestedFilename());
  await download.saveAs(saved);
  const report = readFileSync(saved, "utf8");
  if (report.split("\n").length < 2) fail(`the downloaded report ${saved} is empty`);
  step(`downloaded ${download.suggestedFilename()} (${report.length} bytes)`);

  step("open a rejected loan: its data and its exceptions");
  await page.getByLabel("Disposition").selectOption("rejected");
  await page.locator("table").last().locator("tbody tr td:nth-child(5)", { hasText: "rejected" }).first().waitFor();
  await page.locator("table").last().locator("tbody tr a").first().click();
  await page.getByRole("heading", { level: 1, name: /Loan / }).waitFor();
  await page.locator("dl.facts").first().waitFor();
  await page.locator("ul.loan-exceptions li").first().waitFor({ timeout: 30_000 });
  await check(page, "loan");

  step("bulk-acknowledge the run's exceptions");
  await page.goto(`${BASE}/#/exceptions?run_id=${runId}&status=new`);
  await page.getByLabel("Select all on this page").check();
  const selected = await page.locator("tbody input[type=checkbox]:checked").count();
  if (selected === 0) fail("the run has no new exceptions to acknowledge");
  await check(page, "exceptions");
  const [exported] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  const exportedPath = join(ARTEFACTS, `export-${exported.suggestedFilename()}`);
  await exported.saveAs(exportedPath);
  const exportedRows = readFileSync(exportedPath, "utf8").trim().split("\n").length - 1;
  if (exportedRows !== selected) fail(`the export has ${exportedRows} rows, the page ${selected}`);
  step(`exported ${exportedRows} exceptions`);
  await page.getByRole("button", { name: "acknowledge", exact: true }).click();
  await page.getByText(new RegExp(`acknowledge: ${selected} applied`)).waitFor({ timeout: 30_000 });
  step(`acknowledged ${selected}`);
  await page.getByLabel("Status").selectOption("acknowledged");
  await page.locator("tbody tr").first().waitFor({ timeout: 30_000 });
  const acknowledged = await page.locator("tbody tr").count();
  if (acknowledged !== selected) fail(`${acknowledged} acknowledged exceptions listed, ${selected} expected`);
  await check(page, "exceptions-acknowledged");

  step("an exception's detail and history (a hard one: its waiver is four-eyes)");
  await page.getByLabel("Severity").selectOption("hard");
  await page.locator("tbody tr td:nth-child(4)", { hasText: "hard" }).first().waitFor({ timeout: 30_000 });
  await page.locator("tbody tr td:nth-child(2) a").first().click();
  await page.getByRole("heading", { name: "History" }).waitFor();
  await page.getByRole("cell", { name: "acknowledge", exact: true }).first().waitFor({ timeout: 30_000 });
  await check(page, "exception-detail");

  step("start work on it, then waive it: the waiver waits for a senior analyst");
  await page.getByRole("button", { name: "start", exact: true }).click();
  await page.locator("h1 .badge", { hasText: "in progress" }).waitFor({ timeout: 30_000 });
  await page.getByLabel("Notes").fill("Appraisal confirmed by phone");
  await page.getByRole("button", { name: "waive", exact: true }).click();
  await page.locator("h1 .badge", { hasText: "waiver pending" }).waitFor({ timeout: 30_000 });
  const exceptionUrl = page.url();
  step("approving one's own waiver is refused with the API's message");
  await page.getByRole("button", { name: "approve waiver" }).click();
  await page.getByRole("alert").waitFor({ timeout: 30_000 });
  step(`refused: ${await page.getByRole("alert").textContent()}`);

  step("admin screens: create a team and two users through the forms");
  await page.goto(`${BASE}/#/admin`);
  const adminNav = page.getByRole("navigation", { name: "Administration" });
  await adminNav.getByRole("link", { name: "Teams" }).click();
  await page.getByLabel("Team id").fill("alpha");
  await page.getByLabel("Name").fill("Alpha");
  await page.getByRole("button", { name: "Create team" }).click();
  await page.getByRole("cell", { name: "Alpha", exact: true }).waitFor({ timeout: 30_000 });
  await check(page, "admin-teams");
  await adminNav.getByRole("link", { name: "Users" }).click();
  for (const [username, role, team] of [["sally", "sales_team", "alpha"], ["sam", "senior_analyst", ""]]) {
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("E-mail").fill(`${username}@example.com`);
    await page.getByLabel("Password").fill(`${username}-password-1`);
    await page.getByRole("form", { name: "Create a user" }).getByRole("combobox").selectOption(role);
    await page.getByRole("textbox", { name: "Team", exact: true }).fill(team);
    await page.getByRole("button", { name: "Create user" }).click();
    await page.getByRole("cell", { name: username, exact: true }).waitFor({ timeout: 30_000 });
  }
  await check(page, "admin-users");
  for (const [tab, name] of [["Dead letters", "admin-dead-letters"], ["Audit log", "admin-audit"]]) {
    await adminNav.getByRole("link", { name: tab }).click();
    await page.getByRole("heading", { level: 2, name: tab }).waitFor();
    await page.locator("main table, main .empty, main [role=alert]").first().waitFor({ timeout: 60_000 });
    await check(page, name);
  }

  step("a senior analyst approves the waiver (signing in with the keyboard only)");
  const senior = await newPage();
  await senior.goto(`${BASE}/`);
  await senior.getByLabel("Username").waitFor();
  await senior.keyboard.type("sam");
  await senior.keyboard.press("Tab");
  await senior.keyboard.type("sam-password-1");
  await senior.keyboard.press("Enter");
  await senior.getByRole("button", { name: "Sign out" }).waitFor();
  await senior.keyboard.press("Tab");
  const outline = await senior.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  if (outline === "none") fail("the focused element shows no focus outline");
  await senior.goto(exceptionUrl);
  await senior.getByRole("button", { name: "approve waiver" }).focus();
  await senior.keyboard.press("Enter");
  await senior.locator("h1 .badge", { hasText: "waived" }).waitFor({ timeout: 30_000 });
  await senior.getByRole("cell", { name: "approve-waiver", exact: true }).waitFor({ timeout: 30_000 });
  await check(senior, "exception-waived");

  step("a sales-team user sees only its team's runs");
  const adminToken = await token(admin, adminPassword);
  const teamRun = await api("POST", "/api/pipeline/run", adminToken, {
    folder: "browser-tapes", pdate: "2026-12-01", irr_target: "8.05", sales_team_id: "alpha",
  });
  const sales = await newPage();
  await signIn(sales, "sally", "sally-password-1");
  await sales.getByRole("link", { name: `Run ${teamRun.run_id}` }).waitFor({ timeout: 30_000 });
  const links = await sales.getByRole("link", { name: /^Run / }).evaluateAll((all) => all.map((a) => a.getAttribute("aria-label")));
  if (links.some((label) => label.includes(runId))) fail("the sales-team user sees another team's run");
  if (!links.every((label) => label === `Run ${teamRun.run_id}`)) fail(`unexpected runs for the team: ${links}`);
  if (await sales.getByRole("link", { name: "Admin" }).count()) fail("a sales-team user is offered the admin screens");
  await check(sales, "runs-sales-team");

  if (violations.length) fail(`CSP violations or page errors:\n${violations.join("\n")}`);
  writeFileSync(join(ARTEFACTS, "axe.json"), JSON.stringify(findings, null, 1));
  console.log("workbench end to end: every step passed");
} catch (error) {
  console.error(error);
  for (const [n, open] of pages.entries()) {
    await open.screenshot({ path: join(ARTEFACTS, `failure-${n}.png`), fullPage: true }).catch(() => undefined);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
