// The credit review screens end to end in Debian's chromium (playwright-core) against a running
// stack with the scoring service: BASE_URL, ADMIN_USER/ADMIN_PASSWORD, TAPE (a .csv whose run
// routes loans to human review), ARTEFACTS (screenshots, axe findings), CHROMIUM. An analyst takes
// one case to a decision with the model (and marks a condition fulfilled) and one against it (an
// override, refused first for a short justification); a senior analyst approves the override.
// Exits non-zero on the first failed step.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
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
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(method, path, token, body) {
  const answer = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body instanceof FormData ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
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

async function until(what, probe, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await sleep(2000);
  }
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
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
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

const caseName = (item) => item.seller_loan_number ?? `loan ${item.seq}`;

try {
  const adminToken = await token(env("ADMIN_USER"), env("ADMIN_PASSWORD"));
  step("an analyst and a senior analyst");
  for (const [username, role] of [["rita", "analyst"], ["sam", "senior_analyst"]]) {
    await api("POST", "/api/admin/users", adminToken, { username, email: `${username}@example.com`, password: `${username}-password-1`, role });
  }

  step("a run whose scored loans open review cases");
  const form = new FormData();
  const tape = env("TAPE");
  form.append("file", new Blob([readFileSync(tape)], { type: "text/csv" }), basename(tape));
  await api("POST", "/api/files/upload?path=review-tapes", adminToken, form);
  const run = await api("POST", "/api/pipeline/run", adminToken, { folder: "review-tapes", pdate: "2026-12-01", irr_target: "8.05" });
  await until(
    "the run to complete",
    async () => {
      // The projector lists a run a moment after its request: a 404 until then.
      const answer = await fetch(`${BASE}/api/runs/${run.run_id}`, { headers: { Authorization: `Bearer ${adminToken}` } });
      const status = answer.ok ? (await answer.json()).status : null;
      if (status === "failed") fail(`the run failed: ${JSON.stringify(await api("GET", `/api/runs/${run.run_id}`, adminToken))}`);
      return status === "completed";
    },
    300_000,
  );
  const cases = await until(
    "review cases to open",
    async () => {
      const page = await api("GET", "/api/review/queue?status=pending&limit=1000", adminToken);
      return page.total >= 2 ? page.items : null;
    },
    240_000,
  );
  // The queue's first page (priority order) holds the cases the analyst works from it.
  const details = [];
  for (const item of cases.slice(0, 10)) details.push(await api("GET", `/api/review/cases/${item.case_id}`, adminToken));
  const followed = details.find((d) => d.model_leaning === "approve") ?? details[0];
  const overridden = details.find((d) => d.case_id !== followed.case_id);
  step(`${cases.length} cases; with the model on ${caseName(followed)} (leans ${followed.model_leaning}), against it on ${caseName(overridden)} (leans ${overridden.model_leaning})`);

  step("the analyst's review queue: counts, SLA badges, filters");
  const analyst = await newPage();
  await signIn(analyst, "rita", "rita-password-1");
  await analyst.getByRole("link", { name: "Review", exact: true }).click();
  await analyst.getByRole("heading", { level: 1, name: "Review queue" }).waitFor();
  await analyst.getByRole("link", { name: `Case ${caseName(followed)}` }).waitFor({ timeout: 30_000 });
  await analyst.locator(".review-counts").waitFor();
  await check(analyst, "review-queue");

  step("take the first case: assign, start, decide with the model");
  await analyst.getByRole("button", { name: `Assign to me: ${caseName(followed)}` }).click();
  await analyst.getByLabel("Analyst").selectOption("me");
  await analyst.getByRole("button", { name: `Start: ${caseName(followed)}` }).click();
  await analyst.getByRole("button", { name: `Release: ${caseName(followed)}` }).waitFor({ timeout: 30_000 });
  await analyst.getByRole("link", { name: `Case ${caseName(followed)}` }).click();
  await analyst.getByRole("heading", { level: 1, name: /^Case / }).waitFor();
  await analyst.getByRole("figure").locator("svg rect").first().waitFor();
  await analyst.getByRole("form", { name: "Decision" }).waitFor();
  await check(analyst, "review-case");
  if (followed.model_leaning === "approve") {
    await analyst.getByRole("radio", { name: "Approve with conditions" }).check();
    await analyst.getByLabel("Condition 1 description").fill("Two recent pay slips");
    await analyst.getByRole("button", { name: "Add a condition" }).click();
    await analyst.getByLabel("Condition 2 type").selectOption("guarantor");
    await analyst.getByLabel("Condition 2 description").fill("A parent guarantees the loan");
  } else {
    await analyst.getByRole("radio", { name: "Decline" }).check();
    await analyst.getByLabel("Reasoning").fill("Income cannot be verified from the file");
  }
  await analyst.getByRole("button", { name: "Record decision" }).click();
  await analyst.locator("h1 .badge", { hasText: "decided" }).waitFor({ timeout: 30_000 });
  if (followed.model_leaning === "approve") {
    await analyst.getByRole("button", { name: "Mark condition 2 fulfilled" }).click();
    await analyst.getByRole("list", { name: "Conditions" }).locator("li", { hasText: "A parent guarantees" }).getByText("fulfilled", { exact: true }).waitFor({ timeout: 30_000 });
    step("condition 2 fulfilled");
  }
  await check(analyst, "review-case-decided");

  const released = details.find((d) => d.case_id !== followed.case_id && d.case_id !== overridden.case_id);
  if (released) {
    step(`assign ${caseName(released)} and release it back to the queue, in its case view`);
    await analyst.goto(`${BASE}/#/review/cases/${released.case_id}`);
    await analyst.getByRole("button", { name: "Assign to me" }).click();
    await analyst.locator("h1 .badge", { hasText: "assigned" }).waitFor({ timeout: 30_000 });
    await analyst.getByLabel("Notes").fill("Out of office this afternoon");
    await analyst.getByRole("button", { name: "Release" }).click();
    await analyst.locator("h1 .badge", { hasText: "pending" }).waitFor({ timeout: 30_000 });
    await analyst.getByRole("cell", { name: "Out of office this afternoon" }).waitFor();
  }

  step("the second case against the model: a short justification is refused as the API says");
  await analyst.goto(`${BASE}/#/review/cases/${overridden.case_id}`);
  await analyst.getByRole("button", { name: "Assign to me" }).click();
  await analyst.getByRole("button", { name: "Start" }).click();
  await analyst.getByRole("form", { name: "Decision" }).waitFor({ timeout: 30_000 });
  if (overridden.model_leaning === "approve") {
    await analyst.getByRole("radio", { name: "Decline" }).check();
    await analyst.getByLabel("Reasoning").fill("The borrower's income history is too short");
  } else {
    await analyst.getByRole("radio", { name: "Approve with terms" }).check();
    await analyst.getByRole("textbox", { name: "Terms" }).fill("30-year fixed at the note rate");
  }
  await analyst.getByLabel(/Override justification/).fill("Too short.");
  await analyst.getByText(/10 written, 40 to go/).waitFor();
  await analyst.getByRole("button", { name: "Submit override for approval" }).click();
  const refusal = analyst.getByRole("form", { name: "Decision" }).getByRole("alert");
  await refusal.waitFor({ timeout: 30_000 });
  const refused = await refusal.textContent();
  if (!refused.includes("justification of at least 50 characters")) fail(`unexpected refusal: ${refused}`);
  step(`refused: ${refused}`);
  await analyst.getByLabel(/Override justification/).fill(
    "Verified directly with the employer: the figures on the tape predate a documented change in circumstances.",
  );
  await analyst.getByRole("button", { name: "Submit override for approval" }).click();
  await analyst.locator("h1 .badge", { hasText: "override pending" }).waitFor({ timeout: 30_000 });
  await check(analyst, "review-case-override-pending");

  step("the admin asks to waive a hard exception of the run: it waits beside the override");
  const hard = (await api("GET", `/api/exceptions?run_id=${run.run_id}&severity=hard&status=new&limit=1`, adminToken)).items[0];
  if (hard) {
    for (const action of ["acknowledge", "start"]) await api("POST", `/api/exceptions/${hard.exception_id}/${action}`, adminToken, {});
    await api("POST", `/api/exceptions/${hard.exception_id}/waive`, adminToken, { notes: "Seller confirmed the figure in writing" });
  }

  step("a senior analyst approves the override beside the waiver approvals");
  const senior = await newPage();
  await signIn(senior, "sam", "sam-password-1");
  await senior.getByRole("link", { name: "Approvals" }).click();
  await senior.getByRole("heading", { level: 2, name: "Exception waivers" }).waitFor();
  const approve = senior.getByRole("button", { name: `Approve override of loan ${overridden.seq}` });
  await approve.waitFor({ timeout: 30_000 });
  if (hard) await senior.getByRole("button", { name: `Approve waiver ${hard.exception_id}` }).waitFor({ timeout: 30_000 });
  await check(senior, "approvals");
  if (hard) {
    await senior.getByRole("button", { name: `Approve waiver ${hard.exception_id}` }).click();
    await senior.getByText("No waiver waits for approval.").waitFor({ timeout: 30_000 });
    step("waiver approved");
  }
  await approve.focus();
  await senior.keyboard.press("Enter");
  await senior.getByRole("status").filter({ hasText: "approved" }).waitFor({ timeout: 30_000 });
  await senior.getByText("No override waits for approval.").waitFor({ timeout: 30_000 });
  await senior.goto(`${BASE}/#/review/cases/${overridden.case_id}`);
  await senior.locator("h1 .badge", { hasText: "decided" }).waitFor({ timeout: 30_000 });
  await senior.getByText(/approved by you/).waitFor();
  await check(senior, "review-case-override-approved");

  step("the analyst is told the override was approved: the bell's count, the list, mark read");
  await analyst.goto(`${BASE}/#/notifications`);
  const heading = analyst.getByRole("heading", { level: 1, name: "Notifications" });
  await heading.waitFor();
  const told = analyst.getByRole("button", { name: "Mark read: Override approved" });
  await until(
    "the override's notification",
    async () => {
      if (await told.count()) return true;
      await analyst.reload();
      await heading.waitFor();
      return false;
    },
    90_000,
  );
  await analyst.getByRole("link", { name: /^Notifications, [1-9]\d* unread$/ }).waitFor({ timeout: 30_000 });
  await analyst.getByRole("link", { name: "open the case" }).first().waitFor();
  await check(analyst, "notifications");
  await told.click();
  await told.waitFor({ state: "detached", timeout: 30_000 });
  step("marked read");

  step("both cases are listed as decided, sorted by deadline");
  await analyst.goto(`${BASE}/#/review?status=decided`);
  await analyst.getByLabel("Sort by").selectOption("deadline");
  await analyst.getByRole("link", { name: `Case ${caseName(overridden)}` }).waitFor({ timeout: 30_000 });
  await analyst.getByRole("link", { name: `Case ${caseName(followed)}` }).waitFor({ timeout: 30_000 });

  if (violations.length) fail(`CSP violations or page errors:\n${violations.join("\n")}`);
  writeFileSync(join(ARTEFACTS, "axe-review.json"), JSON.stringify(findings, null, 1));
  console.log("review screens end to end: every step passed");
} catch (error) {
  console.error(error);
  for (const [n, open] of pages.entries()) {
    await open.screenshot({ path: join(ARTEFACTS, `review-failure-${n}.png`), fullPage: true }).catch(() => undefined);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
