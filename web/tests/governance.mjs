// The governance screens end to end in Debian's chromium against a running stack (BASE_URL,
// ADMIN_USER/ADMIN_PASSWORD, TAPE and its LOANS, STORAGE_ROOT, ARTEFACTS, CHROMIUM): a run's pipeline, DQ and
// reconciliation in run detail, the DQ page, a loan's record editor and lineage, a correction
// reprocessed into a child run and its diff against the parent. Screenshot + axe on each screen.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { Harness, env, fail, step } from "./harness.mjs";

/** One CSV line's fields (quoted fields may hold commas and doubled quotes). */
function parseLine(line) {
  const fields = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      fields.push(field);
      field = "";
    } else field += c;
  }
  fields.push(field);
  return fields;
}

const formatLine = (fields) => fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(",");

/** Alter the loan amount of two loans in a run's rejection report, as a fault downstream would:
 * reconciliation must find them. Answers the sellers' loan numbers altered. */
function alterReport(storageRoot, runId) {
  const folder = join(storageRoot, "outputs", runId);
  const name = readdirSync(folder).find((file) => file.startsWith("rejection_report"));
  if (!name) fail(`no rejection report in ${folder}: ${readdirSync(folder)}`);
  const path = join(folder, name);
  const text = readFileSync(path, "utf8");
  const newline = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text.split(newline);
  const altered = [];
  for (let i = 1; i < lines.length && altered.length < 2; i += 1) {
    if (!lines[i]) continue;
    const fields = parseLine(lines[i]);
    if (altered.includes(fields[0])) continue;
    fields[1] = `${fields[1] || "1"}9`;
    lines[i] = formatLine(fields);
    altered.push(fields[0]);
  }
  if (altered.length < 2) fail(`the rejection report ${basename(path)} has fewer than two loans`);
  writeFileSync(path, lines.join(newline));
  return altered;
}

const h = await Harness.launch();
await h.run("governance", async () => {
  const [admin, password] = [env("ADMIN_USER"), env("ADMIN_PASSWORD")];
  const token = await h.token(admin, password);

  step("upload a tape and start a run through the API");
  const form = new FormData();
  form.append("file", new Blob([readFileSync(env("TAPE"))], { type: "text/csv" }), "governance-tape.csv");
  await h.api("POST", "/api/files/upload?path=governance-tapes", token, form);
  const run = await h.api("POST", "/api/pipeline/run", token, { folder: "governance-tapes", pdate: "2026-12-01", irr_target: "8.05" });
  const runId = run.run_id;

  step("run detail: the pipeline draws the stages while the run goes, then its counts");
  const page = await h.newPage();
  await h.signIn(page, admin, password);
  await page.goto(`${h.base}/#/runs/${runId}`);
  const pipeline = page.getByRole("list", { name: "Pipeline stages" });
  await pipeline.waitFor({ timeout: 30_000 });
  await page.locator("h1 .badge", { hasText: "completed" }).waitFor({ timeout: 240_000 });
  const loans = Number(env("LOANS"));
  const dispositioned = pipeline.getByRole("listitem").filter({ hasText: "dispositioned" });
  await dispositioned.filter({ hasText: new RegExp(`out\\s*${loans}\\s*failed`) }).waitFor({ timeout: 30_000 });
  await pipeline.getByRole("listitem").filter({ hasText: "read" }).first().filter({ hasText: "passed" }).waitFor();
  if (await pipeline.locator(".stage-failed").count()) fail("a completed run's pipeline shows failures");
  await h.check(page, "gov-pipeline", page.getByRole("region", { name: "Pipeline" }));

  step("run detail: the run's data quality and its weakest loans");
  const dq = page.getByRole("region", { name: "Data quality" });
  await dq.getByText("Mean DQ score").waitFor({ timeout: 30_000 });
  await dq.getByLabel("Maximum DQ score").fill("100");
  await dq.getByRole("button", { name: "Show" }).click();
  await dq.locator("tbody tr").last().waitFor({ timeout: 30_000 });
  await h.check(page, "gov-dq-panel", dq);

  step("reconciliation: the completed run reconciles clean");
  const recon = page.getByRole("region", { name: "Reconciliation" });
  await recon.locator(".badge", { hasText: /^(clean|findings)$/ }).waitFor({ timeout: 60_000 });
  const first = (await recon.locator(".badge").first().textContent()).trim();
  if (first !== "clean") fail(`a fresh run reconciles as ${first}`);
  await recon.getByText("No findings: every record reconciles.").waitFor();

  step("reconciliation: a report altered downstream, reconciled again on demand, shows the findings");
  const altered = alterReport(env("STORAGE_ROOT"), runId);
  await recon.getByRole("button", { name: "Reconcile again" }).click();
  await recon.locator(".badge", { hasText: "findings" }).waitFor({ timeout: 60_000 });
  const rows = recon.locator("tbody tr");
  await rows.nth(1).waitFor({ timeout: 30_000 });
  if ((await rows.count()) !== 2) fail(`${await rows.count()} findings listed, 2 expected (altered ${altered})`);
  await rows.first().getByText(/loan_amount: .* → .*9 \(rejection_report:\d+\)/).waitFor();

  step("reconciliation: accept one finding, flag the other");
  await rows.nth(0).getByRole("textbox").fill("Report rewritten by hand; the facts are right");
  await rows.nth(0).getByRole("button", { name: "Accept" }).click();
  await rows.nth(0).getByText(`by ${admin}: Report rewritten by hand; the facts are right`).waitFor({ timeout: 30_000 });
  await rows.nth(1).getByRole("textbox").fill("Correct the report");
  await rows.nth(1).getByRole("button", { name: "Flag for correction" }).click();
  await rows.nth(1).getByText(`by ${admin}: Correct the report`).waitFor({ timeout: 30_000 });
  await rows.nth(1).locator(".badge", { hasText: "flagged" }).waitFor();
  await h.check(page, "gov-reconciliation", recon);
  await h.check(page, "gov-run-detail");

  step("the loan view: a loan to purchase, its record, DQ issues and lineage");
  await page.goto(`${h.base}/#/runs/${runId}`);
  await page.getByLabel("Disposition").selectOption("to_purchase");
  const loanTable = page.locator("table").last();
  await loanTable.locator("tbody tr td:nth-child(5)", { hasText: "to_purchase" }).first().waitFor({ timeout: 30_000 });
  const seller = (await loanTable.locator("tbody tr a").first().textContent()).trim();
  await loanTable.locator("tbody tr a").first().click();
  await page.getByRole("heading", { name: "Record: source and current values" }).waitFor({ timeout: 30_000 });
  const lineage = page.getByRole("list", { name: "Events about this loan" });
  await lineage.getByRole("listitem").filter({ hasText: "dispositioned" }).waitFor({ timeout: 30_000 });
  await page.getByText("No corrections recorded for this loan.").waitFor();

  step("correct the loan's LTV with the keyboard: Edit puts the focus on the new value");
  await page.getByRole("button", { name: "Edit ltv_ratio" }).focus();
  await page.keyboard.press("Enter");
  const focused = await page.evaluate(() => document.activeElement?.closest("label")?.textContent ?? "");
  if (!focused.startsWith("New value")) fail(`Edit left the focus on "${focused}"`);
  await page.keyboard.press("Control+A");
  await page.keyboard.type("150");
  await page.getByLabel("Reason").fill("Appraisal re-read: the LTV is 150");
  await page.getByRole("button", { name: "Record correction" }).click();
  await page.getByRole("cell", { name: "recorded", exact: true }).waitFor({ timeout: 30_000 });
  await lineage.getByRole("listitem").filter({ hasText: "corrected" }).waitFor({ timeout: 30_000 });
  const ltv = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: /^ltv_ratio/ }) });
  await ltv.getByText("corrected").waitFor();
  await ltv.getByRole("cell", { name: /^150/ }).waitFor();
  await h.check(page, "gov-loan-record");

  step("reprocess the loan with its correction: the child run opens and shows its diff");
  const toggle = page.getByRole("button", { name: "Reprocess with corrections…" });
  await toggle.focus();
  await page.keyboard.press("Enter");
  const reprocess = page.getByRole("form", { name: "Reprocess this loan" });
  await reprocess.waitFor();
  if ((await toggle.getAttribute("aria-expanded")) !== "true") fail("the open reprocess toggle does not say it is expanded");
  const opened = await page.evaluate(() => document.activeElement?.closest("label")?.textContent ?? "");
  if (!opened.startsWith("IRR target")) fail(`opening the reprocess form left the focus on "${opened}"`);
  const ruleSet = await reprocess.getByLabel("Rule set").inputValue();
  const parentsOption = await reprocess.locator("option", { hasText: "the parent's" }).getAttribute("value");
  if (!ruleSet || ruleSet !== parentsOption) fail(`the reprocess form starts on rule set "${ruleSet}", not the parent's "${parentsOption}"`);
  await reprocess.getByRole("button", { name: "Cancel" }).click();
  if (!(await toggle.evaluate((element) => element === document.activeElement))) fail("cancelling the reprocess form lost the focus");
  await page.keyboard.press("Enter");
  await reprocess.waitFor();
  if (!(await reprocess.getByLabel("Apply corrections").isChecked())) fail("corrections are not applied by default");
  if (!(await reprocess.getByLabel("Only this loan").isChecked())) fail("the loan alone is not chosen by default");
  await h.check(page, "gov-reprocess-form", reprocess);
  await reprocess.getByRole("button", { name: "Start reprocess" }).click();
  await page.waitForURL((url) => /#\/runs\/[0-9a-f-]{36}$/.test(url.hash) && !url.hash.includes(runId), { timeout: 30_000 });
  const childId = page.url().split("/runs/")[1];
  await page.getByRole("link", { name: runId }).first().waitFor({ timeout: 30_000 });
  await page.locator("h1 .badge", { hasText: "completed" }).waitFor({ timeout: 240_000 });
  const diff = page.getByRole("region", { name: "Changes against the parent run" });
  const counts = diff.getByRole("list", { name: "Loans by outcome" });
  await counts.getByText(/^1 changed$/).waitFor({ timeout: 30_000 });
  const change = diff.locator("tbody tr");
  if ((await change.count()) !== 1) fail(`${await change.count()} changed loans listed, 1 expected`);
  await change.first().getByRole("link", { name: seller }).waitFor();
  await change.first().getByRole("cell", { name: "to_purchase", exact: true }).waitFor();
  await change.first().getByRole("cell", { name: "rejected", exact: true }).waitFor();
  await page.getByRole("list", { name: "Pipeline stages" }).getByRole("listitem").filter({ hasText: "dispositioned" }).filter({ hasText: /out\s*1\s*failed/ }).waitFor();
  await h.check(page, "gov-run-diff", diff);
  await h.check(page, "gov-child-run");

  step("the child's loan: the corrected LTV is now its source value");
  await change.first().getByRole("link", { name: seller }).click();
  await page.getByRole("heading", { name: "Record: source and current values" }).waitFor({ timeout: 30_000 });
  const childLtv = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: /^ltv_ratio/ }) });
  await childLtv.getByRole("cell", { name: /^150/ }).first().waitFor({ timeout: 30_000 });
  await page.getByRole("list", { name: "Events about this loan" }).getByRole("listitem").first().waitFor({ timeout: 30_000 });
  if (!page.url().includes(childId)) fail(`the changed loan's link left the child run: ${page.url()}`);
  await h.check(page, "gov-child-loan");

  step("the DQ page: both runs in the trend, and the parent's DQ in full");
  await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Data quality" }).click();
  await page.getByRole("heading", { level: 1, name: "Data quality" }).waitFor();
  await page.getByRole("img", { name: "Mean DQ score per run, oldest first" }).waitFor({ timeout: 30_000 });
  await page.getByRole("link", { name: `Run ${childId}` }).waitFor({ timeout: 30_000 });
  await page.getByRole("button", { name: `Show DQ of run ${runId}` }).click();
  await page.getByRole("region", { name: `Data quality of run ${runId}` }).getByText("Mean DQ score").waitFor({ timeout: 30_000 });
  await h.check(page, "gov-dq-page");
});
