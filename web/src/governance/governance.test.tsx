import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import type { Loan } from "../api/client";
import { ANALYST, fakeFetch, renderScreen } from "../testing";
import { RunDataQuality } from "./DataQuality";
import { DqPage, freshPoints } from "./DqPage";
import { LoanRecord, fieldRows } from "./LoanRecord";
import { RunPipeline, stageState } from "./Pipeline";
import { RunReconciliation, describeField } from "./Reconciliation";
import { reprocessBody, ReprocessForm } from "./Reprocess";
import { RunDiff, countEntries } from "./RunDiff";

const RUN_ID = "44444444-4444-4444-8444-444444444444";
const CHILD_ID = "55555555-5555-4555-8555-555555555555";
const LOAN_ID = "66666666-6666-4666-8666-666666666666";

function stage(name: string, patch: Record<string, unknown> = {}) {
  return { stage: name, available: true, records_in: 10, records_out: 10, failed: 0, stuck: 0, stuck_loan_ids: [], ...patch };
}

const LOAN: Loan = {
  loan_id: LOAN_ID, run_id: RUN_ID, seq: 3, row: 3, source_file: "tape.csv", seller_loan_number: "L-3",
  loan_amount: "250000", note_rate: "7.5", ltv_ratio: "97", dti_ratio: "38", credit_score: "710",
  property_type: "SFR", occupancy_status: "Primary", loan_purpose: "Purchase", purchase_price: "260000",
  appraisal_value: null, disposition: "rejected", pricing_spread: null, final_price: null, dq_score: "80.00",
  duplicate_of: null, rule_set_version: "2026.11.1", invalid_fields: ["ltv_ratio"], exceptions_count: 1,
  extra: { Branch: "North" },
};

function correction(id: string, field: string, value: string) {
  return {
    correction_id: id, loan_id: LOAN_ID, run_id: RUN_ID, source_file: "tape.csv", row: 3, seller_loan_number: "L-3",
    field, value, previous: "97", reason: "Appraisal re-read", corrected_by: "ana", corrected_at: "2026-12-01T10:00:00Z",
  };
}

describe("pipeline", () => {
  it("draws every stage with its counts and marks the stage where records failed", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/stages`]: [200, {
        run_id: RUN_ID, status: "failed",
        stages: [
          stage("read"), stage("ingested"), stage("evaluated", { records_out: 6, failed: 4 }),
          stage("priced", { records_in: 6, records_out: 0 }),
          stage("scored", { available: false, records_in: null, records_out: null }),
        ],
      }],
    });
    renderScreen(<RunPipeline runId={RUN_ID} runStatus="failed" />);
    const pipeline = await screen.findByRole("list", { name: "Pipeline stages" });
    const stages = within(pipeline).getAllByRole("listitem");
    expect(stages).toHaveLength(5);
    expect(stages[2]).toHaveTextContent("evaluated");
    expect(stages[2]).toHaveTextContent("failures");
    expect(stages[2]).toHaveClass("stage-failed");
    expect(stages[2]).toHaveTextContent(/failed\s*4/);
    expect(stages[4]).toHaveTextContent("not tracked");
    expect(screen.queryByText(/Updating every/)).toBeNull();
  });

  it("calls records held before a stage waiting while the run goes and failed once it has stopped", () => {
    const held = stage("priced", { stuck: 500, records_out: 0 });
    expect(stageState(held, "running")).toBe("waiting");
    expect(stageState(held, "failed")).toBe("failed");
    expect(stageState(stage("read", { available: false }), "running")).toBe("untracked");
    expect(stageState(stage("read"), "completed")).toBe("done");
  });

  it("reads the stages again while the run goes, so the counts move", async () => {
    let answered = 0;
    globalThis.fetch = (async () => {
      answered += 1;
      const body = { run_id: RUN_ID, status: "running", stages: [stage("read"), stage("ingested", { records_out: answered > 1 ? 10 : 4 })] };
      return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
    }) as typeof fetch;
    renderScreen(<RunPipeline runId={RUN_ID} runStatus="running" pollMs={20} />);
    const ingested = await screen.findByText("ingested");
    await waitFor(() => expect(ingested.closest("li")).toHaveTextContent(/out\s*10/));
    expect(answered).toBeGreaterThan(1);
  });

  it("stops reading the stages once the run has settled", async () => {
    const calls = fakeFetch({ [`GET /api/runs/${RUN_ID}/stages`]: [200, { run_id: RUN_ID, status: "completed", stages: [stage("read")] }] });
    renderScreen(<RunPipeline runId={RUN_ID} runStatus="completed" pollMs={20} />);
    await screen.findByText("passed");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(calls).toHaveLength(1);
  });

  it("lists the ids of the loans held before a stage", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/stages`]: [200, {
        run_id: RUN_ID, status: "running",
        stages: [stage("read"), stage("priced", { stuck: 1, records_out: 9, stuck_loan_ids: [LOAN_ID] })],
      }],
    });
    renderScreen(<RunPipeline runId={RUN_ID} runStatus="running" />);
    expect(await screen.findByText("1 loans held before priced")).toBeInTheDocument();
    expect(screen.getByText(LOAN_ID)).toBeInTheDocument();
    expect(screen.getByText(/Updating every 4 s/)).toBeInTheDocument();
  });
});

describe("data quality", () => {
  it("shows a run's dimensions, fields and its weakest loans, asking again with a new maximum score", async () => {
    const calls = fakeFetch({
      "GET /api/dq/summary": [200, {
        run_id: RUN_ID, loans: 10, rule_set_version: "2026.11.1",
        dimensions: { completeness: "0.9500", validity: "0.9000", conformance: "0.8000", uniqueness: "1.0000", dq_score: "91.25" },
        fields: [{ field: "ltv_ratio", present: 9, valid: 8, completeness_pct: "90.00", validity_pct: "88.89" }],
        score_bands: [{ low: "0", high: "50", loans: 1 }, { low: "50", high: "100", loans: 9 }],
      }],
      "GET /api/dq/failures": [200, {
        items: [{ loan_id: LOAN_ID, seq: 3, row: 3, source_file: "tape.csv", seller_loan_number: "L-3", dq_score: "40.00", disposition: "rejected", duplicate: false, missing_fields: ["appraisal_value"], invalid_fields: ["ltv_ratio"] }],
        skip: 0, limit: 25, next_cursor: null,
      }],
    });
    renderScreen(<RunDataQuality runId={RUN_ID} />);
    expect(await screen.findByText("91.25")).toBeInTheDocument();
    expect(screen.getByText("95.00%")).toBeInTheDocument();
    expect(screen.getByRole("img", { name: "Loans by DQ score band" })).toBeInTheDocument();
    expect(await screen.findByRole("link", { name: "L-3" })).toBeInTheDocument();
    const maximum = screen.getByLabelText("Maximum DQ score");
    await userEvent.clear(maximum);
    await userEvent.type(maximum, "50");
    await userEvent.click(screen.getByRole("button", { name: "Show" }));
    await waitFor(() => expect(calls.some((call) => call.url.searchParams.get("max_score") === "50")).toBe(true));
  });

  it("shows the trend's refusal of a reversed range as the API gave it", async () => {
    fakeFetch({ "GET /api/dq/trend": [400, { error: "`to` must not be before `from`", status_code: 400, request_id: "r" }] });
    renderScreen(
      <Routes>
        <Route path="/dq" element={<DqPage />} />
      </Routes>,
      { path: "/dq?from=2026-12-05&to=2026-12-01" },
    );
    expect(await screen.findByRole("alert")).toHaveTextContent("`to` must not be before `from`");
  });

  it("says so when no run falls in the range, and does not show a page's overlap twice", async () => {
    fakeFetch({ "GET /api/dq/trend": [200, []] });
    renderScreen(
      <Routes>
        <Route path="/dq" element={<DqPage />} />
      </Routes>,
      { path: "/dq" },
    );
    expect(await screen.findByText("No run with evaluated loans in this range.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Later runs" })).toBeDisabled();
    const point = { run_id: RUN_ID, created_at: null, status: "completed", loans: 1, dimensions: LOAN as never };
    expect(freshPoints([point, { ...point, run_id: CHILD_ID }], new Set([RUN_ID])).map((p) => p.run_id)).toEqual([CHILD_ID]);
  });
});

describe("reconciliation", () => {
  const FINDING = {
    finding_id: "77777777-7777-4777-8777-777777777777", kind: "mismatched", locator: "tape.csv/3", seq: 3, loan_id: LOAN_ID,
    source_file: "tape.csv", row: 3, seller_loan_number: "L-3",
    fields: [{ field: "ltv_ratio", where: "loan_facts", source: "97", downstream: "79" }],
    review: null, review_notes: null, reviewed_by: null, reviewed_at: null,
  };
  const SUMMARY = {
    run_id: RUN_ID, status: "findings", error: null, reconciled_at: "2026-12-01T10:00:00Z",
    counts: { matched: 9, mismatched: 1, source_only: 0, downstream_only: 0 },
    findings: { items: [FINDING], skip: 0, limit: 25, next_cursor: null },
  };

  it("accepts a finding with notes and shows who accepted it", async () => {
    const calls = fakeFetch({
      [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, SUMMARY],
      [`POST /api/runs/${RUN_ID}/reconciliation/findings/${FINDING.finding_id}/accept`]: [202, {
        finding_id: FINDING.finding_id, run_id: RUN_ID, action: "accept", notes: "Known rounding", reviewed_by: "ana", reviewed_at: "2026-12-01T11:00:00Z",
      }],
    });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct />);
    expect(await screen.findByText("ltv_ratio: 97 → 79 (loan_facts)")).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Notes on tape.csv/3"), "Known rounding");
    await userEvent.click(screen.getByRole("button", { name: "Accept" }));
    expect(await screen.findByText(/by ana: Known rounding/)).toBeInTheDocument();
    expect(calls.find((call) => call.method === "POST")!.body).toEqual({ notes: "Known rounding" });
  });

  it("shows a refused review and a refused run as the API gave them", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, SUMMARY],
      [`POST /api/runs/${RUN_ID}/reconciliation`]: [409, { error: "Only a completed run is reconciled (this one is running)", status_code: 409 }],
      [`POST /api/runs/${RUN_ID}/reconciliation/findings/${FINDING.finding_id}/flag`]: [422, {
        error: "Request validation failed", status_code: 422, details: [{ loc: ["body", "notes"], msg: "String should have at least 1 character", type: "x" }],
      }],
    });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct />);
    await userEvent.click(await screen.findByRole("button", { name: "Flag for correction" }));
    expect(await screen.findByText(/body.notes String should have at least 1 character/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Reconcile again" }));
    expect(await screen.findByText("Only a completed run is reconciled (this one is running)")).toBeInTheDocument();
  });

  it("offers no review to people who may not reconcile, and says when a run has not been reconciled", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, { ...SUMMARY, status: "pending", reconciled_at: null, findings: { items: [], skip: 0, limit: 25, next_cursor: null } }],
    });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct={false} />);
    expect(await screen.findByText(/This run has not been reconciled yet/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Reconcile again" })).toBeNull();
    expect(describeField({ field: "x", source: null, downstream: "1" })).toBe("x: (empty) → 1");
  });
});

describe("diff against the parent", () => {
  it("shows the counts by transition and each changed loan, with pages by skip", async () => {
    const calls = fakeFetch({
      [`GET /api/runs/${CHILD_ID}/diff`]: [200, {
        run_id: CHILD_ID, parent_run_id: RUN_ID, skip: 0, limit: 25,
        counts: { unchanged: 0, changed: 30, "rejected->to_purchase": 30 },
        changes: [{
          loan_id: LOAN_ID, parent_loan_id: null, seller_loan_number: "L-3", source_file: "tape.csv", row: 3,
          disposition_before: "rejected", disposition_after: "to_purchase", exceptions_added: [], exceptions_removed: ["ltv_too_high"],
          price_before: null, price_after: "101.2500",
        }],
      }],
    });
    renderScreen(<RunDiff runId={CHILD_ID} parentRunId={RUN_ID} />);
    const counts = await screen.findByRole("list", { name: "Loans by outcome" });
    expect(counts).toHaveTextContent("30 changed");
    expect(counts).toHaveTextContent("30 rejected → to purchase");
    expect(screen.getByRole("cell", { name: "ltv_too_high" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: `run ${RUN_ID}` })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await waitFor(() => expect(calls.some((call) => call.url.searchParams.get("skip") === "25")).toBe(true));
    expect(countEntries({ "a->b": 1, unchanged: 2, changed: 3 })).toEqual([["changed", 3], ["unchanged", 2], ["a->b", 1]]);
  });
});

describe("loan record", () => {
  it("shows each field's source and current value and records a correction with its reason", async () => {
    const recorded = correction("88888888-8888-4888-8888-888888888888", "ltv_ratio", "79");
    const calls = fakeFetch({
      [`GET /api/loans/${LOAN_ID}/corrections`]: [200, []],
      [`GET /api/loans/${LOAN_ID}/history`]: [200, {
        loan_id: LOAN_ID, run_id: RUN_ID, source_file: "tape.csv", row: 3, seller_loan_number: "L-3",
        events: [{ kind: "evaluated", event_type: "loan.evaluated", topic: "t.loans.evaluated.v1", partition: 0, offset: 12, occurred_at: null, source_file: "tape.csv", row: 3, details: { rule_set_version: "2026.11.1", exceptions: ["ltv_too_high"] } }],
      }],
      [`POST /api/loans/${LOAN_ID}/corrections`]: [202, recorded],
      "GET /api/rule-sets": [200, []],
    });
    renderScreen(<LoanRecord loan={LOAN} />);
    expect(await screen.findByText("rule set version: 2026.11.1; exceptions: ltv_too_high")).toBeInTheDocument();
    expect(screen.getByText("t.loans.evaluated.v1 [0] @12")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Edit ltv_ratio" }));
    expect(screen.getByLabelText("New value")).toHaveFocus();
    await userEvent.clear(screen.getByLabelText("New value"));
    await userEvent.type(screen.getByLabelText("New value"), "79");
    await userEvent.type(screen.getByLabelText("Reason"), "Appraisal re-read");
    await userEvent.click(screen.getByRole("button", { name: "Record correction" }));
    expect(await screen.findByText("being recorded")).toBeInTheDocument();
    expect(calls.find((call) => call.method === "POST")!.body).toEqual({ field: "ltv_ratio", value: "79", reason: "Appraisal re-read" });
    const row = screen.getByRole("rowheader", { name: /ltv_ratio/ }).closest("tr")!;
    expect(row).toHaveTextContent("97");
    expect(row).toHaveTextContent("79");
    expect(row).toHaveTextContent("corrected");
  });

  it("shows the API's refusal of a correction and offers no editor to a sales team", async () => {
    fakeFetch({
      [`GET /api/loans/${LOAN_ID}/corrections`]: [200, []],
      [`GET /api/loans/${LOAN_ID}/history`]: [200, { loan_id: LOAN_ID, run_id: RUN_ID, source_file: "tape.csv", row: 3, seller_loan_number: null, events: [] }],
      [`POST /api/loans/${LOAN_ID}/corrections`]: [422, { error: "Field 'x' is neither a loan field nor one of this loan's columns", status_code: 422 }],
    });
    const { unmount } = renderScreen(<LoanRecord loan={LOAN} />);
    await userEvent.type(screen.getByLabelText("Reason"), "why");
    await userEvent.click(screen.getByRole("button", { name: "Record correction" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("neither a loan field");
    unmount();
    renderScreen(<LoanRecord loan={LOAN} />, { me: { ...ANALYST, role: "sales_team", team_id: "alpha" } });
    expect(await screen.findByText("No events about this loan yet.")).toBeInTheDocument();
    expect(screen.queryByRole("form", { name: "Correct a field" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Reprocess/ })).toBeNull();
  });

  it("takes the latest correction of a field as its current value and keeps other columns", () => {
    const rows = fieldRows(LOAN, [correction("a", "ltv_ratio", "80"), correction("b", "ltv_ratio", "79")]);
    const ltv = rows.find((row) => row.field === "ltv_ratio")!;
    expect(ltv).toMatchObject({ source: "97", current: "79", corrected: true, invalid: true });
    expect(rows.find((row) => row.field === "Branch")).toMatchObject({ source: "North", current: "North", corrected: false });
  });
});

describe("reprocess", () => {
  it("sends only what was set and opens the child run", async () => {
    const calls = fakeFetch({
      "GET /api/rule-sets": [200, [{ version: "2026.11.1", description: "d", eligibility_rules: 9, current: true }]],
      [`POST /api/runs/${RUN_ID}/reprocess`]: [202, { run_id: CHILD_ID }],
    });
    renderScreen(
      <Routes>
        <Route path="/runs/:runId/loans/:loanId" element={<ReprocessForm runId={RUN_ID} loanId={LOAN_ID} />} />
        <Route path="/runs/:runId" element={<p>child run page</p>} />
      </Routes>,
      { path: `/runs/${RUN_ID}/loans/${LOAN_ID}` },
    );
    await screen.findByRole("option", { name: "2026.11.1 (current)" });
    await userEvent.type(screen.getByLabelText("IRR target"), "7.5");
    await userEvent.selectOptions(screen.getByLabelText("Rule set"), "2026.11.1");
    await userEvent.click(screen.getByRole("button", { name: "Start reprocess" }));
    expect(await screen.findByText("child run page")).toBeInTheDocument();
    expect(calls.find((call) => call.method === "POST")!.body).toEqual({
      irr_target: "7.5", pdate: null, rule_set_version: "2026.11.1", apply_corrections: true, loan_ids: [LOAN_ID],
    });
  });

  it("shows a refused reprocess as the API gave it", async () => {
    fakeFetch({
      "GET /api/rule-sets": [200, []],
      [`POST /api/runs/${RUN_ID}/reprocess`]: [422, { error: "1 loan ids are not loans of this run: x", status_code: 422 }],
    });
    renderScreen(<ReprocessForm runId={RUN_ID} />);
    await userEvent.type(screen.getByLabelText("Only these loan ids (optional)"), "x");
    await userEvent.click(screen.getByRole("button", { name: "Start reprocess" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("1 loan ids are not loans of this run: x");
    expect(reprocessBody({ irrTarget: " ", pdate: "", ruleSetVersion: "", applyCorrections: false, loanIds: "a, b\na" })).toEqual({
      irr_target: null, pdate: null, rule_set_version: null, apply_corrections: false, loan_ids: ["a", "b"],
    });
  });
});
