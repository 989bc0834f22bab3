import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import type { Loan, Run } from "../api/client";
import { ANALYST, fakeFetch, renderScreen, type Call } from "../testing";
import { RunDataQuality, parseMaxScore } from "./DataQuality";
import { DqPage, TREND_PAGE, freshPoints } from "./DqPage";
import { LoanRecord, confirmDelay, fieldRows } from "./LoanRecord";
import { RunPipeline, runSettled, stageState } from "./Pipeline";
import { RunReconciliation, describeField } from "./Reconciliation";
import { reprocessBody, ReprocessForm, ruleSetLabel } from "./Reprocess";
import { ReprocessControl, RunGovernance } from "./RunGovernance";
import { RunDiff, countEntries, hasNextDiffPage } from "./RunDiff";

const RUN_ID = "44444444-4444-4444-8444-444444444444";
const CHILD_ID = "55555555-5555-4555-8555-555555555555";
const LOAN_ID = "66666666-6666-4666-8666-666666666666";

function stage(name: string, patch: Record<string, unknown> = {}) {
  return { stage: name, available: true, records_in: 10, records_out: 10, failed: 0, stuck: 0, stuck_loan_ids: [], ...patch };
}

/** A fetch whose answers a function gives (so they can change from one call to the next, or take
 * a while); records each call like `fakeFetch`. */
function scriptedFetch(answer: (call: Call) => [number, unknown] | Promise<[number, unknown]>): Call[] {
  const calls: Call[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), location.origin), init);
    const text = await request.text();
    const call = { method: request.method, url: new URL(request.url), body: text ? JSON.parse(text) : null };
    calls.push(call);
    const [status, payload] = await answer(call);
    return new Response(JSON.stringify(payload), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return calls;
}

const later = <T,>(value: T, ms = 150) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const DQ_SUMMARY = {
  run_id: RUN_ID, loans: 10, rule_set_version: "2026.10.0",
  dimensions: { completeness: "0.9500", validity: "0.9000", conformance: "0.8000", uniqueness: "1.0000", dq_score: "91.25" },
  fields: [{ field: "ltv_ratio", present: 9, valid: 8, completeness_pct: "90.00", validity_pct: "88.89" }],
  score_bands: [{ low: "0", high: "50", loans: 1 }, { low: "50", high: "100", loans: 9 }],
};

function failure(n: number) {
  return {
    loan_id: `66666666-6666-4666-8666-${String(n).padStart(12, "0")}`, seq: n, row: n, source_file: "tape.csv", seller_loan_number: `L-${n}`,
    dq_score: "40.00", disposition: "rejected", duplicate: false, missing_fields: ["appraisal_value"], invalid_fields: ["ltv_ratio"],
  };
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

  it("calls records held before a stage waiting while the run goes and failed once it has stopped, but loans not yet projected only waiting", () => {
    const held = stage("priced", { stuck: 500, records_out: 0 });
    expect(stageState(held, "running")).toBe("waiting");
    expect(stageState(held, "failed")).toBe("failed");
    expect(stageState(stage("projected", { stuck: 3, records_out: 7 }), "completed")).toBe("waiting");
    expect(stageState(stage("read", { available: false }), "running")).toBe("untracked");
    expect(stageState(stage("read"), "completed")).toBe("done");
  });

  it("takes a run as settled only once it has stopped and every loan it reported is projected", () => {
    const projected = (stuck: number) => [stage("reported"), stage("projected", { stuck, records_out: 10 - stuck })];
    expect(runSettled({ status: "running", stages: projected(0) })).toBe(false);
    expect(runSettled({ status: "completed", stages: projected(3) })).toBe(false);
    expect(runSettled({ status: "completed", stages: projected(0) })).toBe(true);
    expect(runSettled({ status: "failed", stages: projected(0) })).toBe(true);
    expect(runSettled(undefined)).toBe(false);
  });

  it("keeps reading a completed run's stages while loans wait for the projection, calling them waiting, then stops", async () => {
    let stuck = 3;
    const calls = scriptedFetch(() => [200, { run_id: RUN_ID, status: "completed", stages: [stage("reported"), stage("projected", { stuck, records_out: 10 - stuck })] }]);
    renderScreen(<RunPipeline runId={RUN_ID} runStatus="completed" pollMs={20} />);
    const projected = (await screen.findByText("projected")).closest("li")!;
    expect(projected).toHaveTextContent("records waiting");
    expect(projected).not.toHaveClass("stage-failed");
    expect(screen.getByText(/until every loan is projected/)).toBeInTheDocument();
    await waitFor(() => expect(calls.length).toBeGreaterThan(2));
    stuck = 0;
    await waitFor(() => expect(projected).toHaveTextContent("passed"));
    const settledAfter = calls.length;
    await pause(200);
    expect(calls).toHaveLength(settledAfter);
    expect(screen.queryByText(/Updating every/)).toBeNull();
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

  it("stops reading the stages once the run goes from running to completed", async () => {
    let status = "running";
    const calls = scriptedFetch(() => [200, { run_id: RUN_ID, status, stages: [stage("read", { records_out: status === "running" ? 0 : 10 })] }]);
    // The run detail hands the pipeline the run's status as it changes.
    function RunPage() {
      const [runStatus, setRunStatus] = useState("running");
      return (
        <>
          <button type="button" onClick={() => setRunStatus("completed")}>
            run completes
          </button>
          <RunPipeline runId={RUN_ID} runStatus={runStatus} pollMs={20} />
        </>
      );
    }
    renderScreen(<RunPage />);
    await screen.findByText("nothing yet");
    await waitFor(() => expect(calls.length).toBeGreaterThan(2));
    status = "completed";
    await userEvent.click(screen.getByRole("button", { name: "run completes" }));
    await screen.findByText("passed");
    const settledAfter = calls.length;
    await pause(200);
    expect(calls).toHaveLength(settledAfter);
  });

  it("lists the ids of the loans held before a stage and counts them all, not just the ids it was given", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/stages`]: [200, {
        run_id: RUN_ID, status: "running",
        stages: [stage("read"), stage("priced", { stuck: 120, records_out: 9, stuck_loan_ids: [LOAN_ID] })],
      }],
    });
    renderScreen(<RunPipeline runId={RUN_ID} runStatus="running" />);
    expect(await screen.findByText("120 loans held before priced")).toBeInTheDocument();
    expect(screen.getByText(LOAN_ID)).toBeInTheDocument();
    expect(screen.getByText("and 119 more")).toBeInTheDocument();
    expect(screen.getByText(/Updating every 4 s/)).toBeInTheDocument();
  });
});

describe("data quality", () => {
  it("shows a run's dimensions, fields and its weakest loans, asking again with a new maximum score", async () => {
    const calls = fakeFetch({
      "GET /api/dq/summary": [200, DQ_SUMMARY],
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

  it("refuses a cleared or out-of-range maximum score instead of asking for loans scoring 0", async () => {
    const calls = fakeFetch({
      "GET /api/dq/summary": [200, DQ_SUMMARY],
      "GET /api/dq/failures": [200, { items: [failure(3)], skip: 0, limit: 25, next_cursor: null }],
    });
    renderScreen(<RunDataQuality runId={RUN_ID} />);
    await screen.findByRole("link", { name: "L-3" });
    const before = calls.length;
    const maximum = screen.getByLabelText("Maximum DQ score");
    await userEvent.clear(maximum);
    await userEvent.click(screen.getByRole("button", { name: "Show" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Enter a maximum DQ score from 0 to 100.");
    expect(maximum).toHaveAttribute("aria-invalid", "true");
    await pause(50);
    expect(calls).toHaveLength(before);
    expect(calls.some((call) => call.url.searchParams.get("max_score") === "0")).toBe(false);
    expect(parseMaxScore("101")).toEqual({ error: "Enter a maximum DQ score from 0 to 100." });
    expect(parseMaxScore(" 0 ")).toEqual({ value: "0" });
  });

  it("turns one page of weakest loans on a double click of Next, not two", async () => {
    const calls = scriptedFetch((call) => {
      if (call.url.pathname === "/api/dq/summary") return [200, DQ_SUMMARY];
      const after = call.url.searchParams.get("after");
      if (after === null) return [200, { items: [failure(1)], skip: 0, limit: 25, next_cursor: "c1" }];
      return later([200, { items: [failure(2)], skip: 0, limit: 25, next_cursor: "c2" }]);
    });
    renderScreen(<RunDataQuality runId={RUN_ID} />);
    await screen.findByRole("link", { name: "L-1" });
    const pages = screen.getByRole("navigation", { name: "Weakest loans pages" });
    await userEvent.dblClick(within(pages).getByRole("button", { name: "Next page" }));
    expect(await screen.findByRole("link", { name: "L-2" })).toBeInTheDocument();
    expect(pages).toHaveTextContent("Page 2");
    expect(calls.filter((call) => call.url.searchParams.get("after") === "c2")).toHaveLength(0);
  });

  it("waits for every loan to be projected before it reads a run's DQ", async () => {
    fakeFetch({ "GET /api/dq/summary": [200, DQ_SUMMARY] });
    renderScreen(<RunDataQuality runId={RUN_ID} settled={false} />);
    expect(screen.getByText("Waiting for every loan of the run to be projected…")).toBeInTheDocument();
    await pause(50);
    expect(screen.queryByText("91.25")).toBeNull();
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

  it("says so when no run falls in the range", async () => {
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

  it("pages the trend forward from the last run shown, without that run twice, one page per double click", async () => {
    const dimensions = DQ_SUMMARY.dimensions;
    const point = (n: number) => ({
      run_id: `99999999-9999-4999-8999-${String(n).padStart(12, "0")}`,
      created_at: `2026-12-01T10:${String(Math.floor(n / 60)).padStart(2, "0")}:${String(n % 60).padStart(2, "0")}Z`,
      status: "completed", loans: 10, dimensions,
    });
    const first = Array.from({ length: TREND_PAGE }, (_, n) => point(n));
    const last = first[TREND_PAGE - 1];
    const calls = scriptedFetch((call) =>
      call.url.searchParams.get("from") === last.created_at ? later([200, [last, point(TREND_PAGE)]]) : [200, first],
    );
    renderScreen(
      <Routes>
        <Route path="/dq" element={<DqPage />} />
      </Routes>,
      { path: "/dq" },
    );
    await screen.findByLabelText(`Run ${last.run_id}`, undefined, { timeout: 5000 });
    const pages = screen.getByRole("navigation", { name: "Trend pages" });
    await userEvent.dblClick(within(pages).getByRole("button", { name: "Later runs" }));
    expect(await screen.findByLabelText(`Run ${point(TREND_PAGE).run_id}`, undefined, { timeout: 5000 })).toBeInTheDocument();
    expect(pages).toHaveTextContent("Page 2");
    expect(screen.queryByLabelText(`Run ${last.run_id}`)).toBeNull();
    expect(calls.filter((call) => call.url.searchParams.get("from") === last.created_at)).toHaveLength(1);
    await userEvent.click(within(pages).getByRole("button", { name: "Earlier runs" }));
    expect(await screen.findByLabelText(`Run ${last.run_id}`, undefined, { timeout: 5000 })).toBeInTheDocument();
    expect(pages).toHaveTextContent("Page 1");
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

  it("asks for notes before it sends a review", async () => {
    const calls = fakeFetch({ [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, SUMMARY] });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct />);
    const accept = await screen.findByRole("button", { name: "Accept" });
    expect(accept).toBeDisabled();
    expect(screen.getByRole("button", { name: "Flag for correction" })).toBeDisabled();
    expect(screen.getByLabelText("Notes on tape.csv/3")).toHaveAccessibleDescription("Notes are needed to accept or flag.");
    await userEvent.type(screen.getByLabelText("Notes on tape.csv/3"), "   ");
    expect(accept).toBeDisabled();
    await userEvent.type(screen.getByLabelText("Notes on tape.csv/3"), "why");
    expect(accept).toBeEnabled();
    expect(calls.some((call) => call.method === "POST")).toBe(false);
  });

  it("shows a refused review and a refused run as the API gave them", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, SUMMARY],
      [`POST /api/runs/${RUN_ID}/reconciliation`]: [409, { error: "Only a completed run is reconciled (this one is running)", status_code: 409 }],
      [`POST /api/runs/${RUN_ID}/reconciliation/findings/${FINDING.finding_id}/flag`]: [422, {
        error: "Request validation failed", status_code: 422, details: [{ loc: ["body", "notes"], msg: "String should have at most 2000 characters", type: "x" }],
      }],
    });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct />);
    await userEvent.type(await screen.findByLabelText("Notes on tape.csv/3"), "too long");
    await userEvent.click(screen.getByRole("button", { name: "Flag for correction" }));
    expect(await screen.findByText(/body.notes String should have at most 2000 characters/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Reconcile again" }));
    expect(await screen.findByText("Only a completed run is reconciled (this one is running)")).toBeInTheDocument();
  });

  it("shows findings without any review control to people who may not reconcile", async () => {
    fakeFetch({ [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, SUMMARY] });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct={false} />);
    expect(await screen.findByText("ltv_ratio: 97 → 79 (loan_facts)")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Accept" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Flag for correction" })).toBeNull();
    expect(screen.queryByRole("textbox")).toBeNull();
    expect(screen.queryByRole("button", { name: "Reconcile again" })).toBeNull();
  });

  it("says when a run has not been reconciled yet", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}/reconciliation`]: [200, { ...SUMMARY, status: "pending", reconciled_at: null, findings: { items: [], skip: 0, limit: 25, next_cursor: null } }],
    });
    renderScreen(<RunReconciliation runId={RUN_ID} canAct={false} />);
    expect(await screen.findByText(/This run has not been reconciled yet/)).toBeInTheDocument();
    expect(describeField({ field: "x", source: null, downstream: "1" })).toBe("x: (empty) → 1");
  });

  it("turns one page of findings on a double click of Next, not two", async () => {
    const second = { ...FINDING, finding_id: "77777777-7777-4777-8777-000000000002", locator: "tape.csv/4", seller_loan_number: "L-4" };
    const calls = scriptedFetch((call) =>
      call.url.searchParams.get("after") === "c1"
        ? later([200, { ...SUMMARY, findings: { items: [second], skip: 0, limit: 25, next_cursor: "c2" } }])
        : [200, { ...SUMMARY, findings: { items: [FINDING], skip: 0, limit: 25, next_cursor: "c1" } }],
    );
    renderScreen(<RunReconciliation runId={RUN_ID} canAct={false} />);
    await screen.findByRole("link", { name: "L-3" });
    const pages = screen.getByRole("navigation", { name: "Findings pages" });
    await userEvent.dblClick(within(pages).getByRole("button", { name: "Next page" }));
    expect(await screen.findByRole("link", { name: "L-4" })).toBeInTheDocument();
    expect(pages).toHaveTextContent("Page 2");
    expect(calls.filter((call) => call.url.searchParams.get("after") === "c2")).toHaveLength(0);
  });
});

describe("diff against the parent", () => {
  it("shows the counts by transition and each changed loan, with pages by skip over the changed and added loans", async () => {
    const calls = fakeFetch({
      [`GET /api/runs/${CHILD_ID}/diff`]: [200, {
        run_id: CHILD_ID, parent_run_id: RUN_ID, skip: 0, limit: 25,
        counts: { unchanged: 0, changed: 20, added: 10, "rejected->to_purchase": 20 },
        changes: [{
          loan_id: LOAN_ID, parent_loan_id: null, seller_loan_number: "L-3", source_file: "tape.csv", row: 3,
          disposition_before: "rejected", disposition_after: "to_purchase", exceptions_added: [], exceptions_removed: ["ltv_too_high"],
          price_before: null, price_after: "101.2500",
        }],
      }],
    });
    renderScreen(<RunDiff runId={CHILD_ID} parentRunId={RUN_ID} />);
    const counts = await screen.findByRole("list", { name: "Loans by outcome" });
    expect(counts).toHaveTextContent("20 changed");
    expect(counts).toHaveTextContent("10 added");
    expect(counts).toHaveTextContent("20 rejected → to purchase");
    expect(screen.getByRole("cell", { name: "ltv_too_high" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: `run ${RUN_ID}` })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await waitFor(() => expect(calls.some((call) => call.url.searchParams.get("skip") === "25")).toBe(true));
    expect(countEntries({ "a->b": 1, unchanged: 2, changed: 3 })).toEqual([["changed", 3], ["unchanged", 2], ["a->b", 1]]);
  });

  it("has no next page once the changed and added loans are all shown", () => {
    expect(hasNextDiffPage({ changed: 25, unchanged: 5 }, 0)).toBe(false);
    expect(hasNextDiffPage({ changed: 20, added: 6 }, 0)).toBe(true);
    expect(hasNextDiffPage({ changed: 20, added: 6 }, 25)).toBe(false);
  });
});

describe("a completed run's governance panels", () => {
  const RUN = {
    run_id: CHILD_ID, status: "completed", last_phase: "archive", error: null, total_loans: 10, total_balance: "100",
    exceptions_count: 0, dispositions: {}, run_weekday: 0, run_weekday_name: "Monday", created_at: null, started_at: null,
    completed_at: null, pdate: "2026-12-01", irr_target: "8.05", sales_team_id: null, folder: "tapes",
    source: { kind: "folder", location: "tapes" }, parent_run_id: RUN_ID, attempt: 1, requested_by: "ana",
  } as unknown as Run;

  it("reads the DQ and the diff only once every loan of the run is projected", async () => {
    let stagesRead = 0;
    const calls = scriptedFetch((call) => {
      const path = call.url.pathname;
      if (path.endsWith("/stages")) {
        stagesRead += 1;
        const stuck = stagesRead < 3 ? 4 : 0;
        return [200, { run_id: CHILD_ID, status: "completed", stages: [stage("reported"), stage("projected", { stuck, records_out: 10 - stuck })] }];
      }
      if (path === "/api/dq/summary") return [200, { ...DQ_SUMMARY, run_id: CHILD_ID }];
      if (path === "/api/dq/failures") return [200, { items: [], skip: 0, limit: 25, next_cursor: null }];
      if (path.endsWith("/diff")) return [200, { run_id: CHILD_ID, parent_run_id: RUN_ID, skip: 0, limit: 25, counts: { changed: 0, unchanged: 10 }, changes: [] }];
      return [200, { run_id: CHILD_ID, status: "clean", error: null, reconciled_at: null, counts: { matched: 10, mismatched: 0, source_only: 0, downstream_only: 0 }, findings: { items: [], skip: 0, limit: 25, next_cursor: null } }];
    });
    renderScreen(<RunGovernance run={RUN} pollMs={20} />);
    expect(screen.getAllByText("Waiting for every loan of the run to be projected…")).toHaveLength(2);
    expect(await screen.findByText("91.25")).toBeInTheDocument();
    expect(await screen.findByText("No loan's outcome changed.")).toBeInTheDocument();
    const settledAt = calls.findIndex((call) => call.url.pathname.endsWith("/stages") && calls.filter((c, i) => i <= calls.indexOf(call) && c.url.pathname.endsWith("/stages")).length === 3);
    const firstDq = calls.findIndex((call) => call.url.pathname === "/api/dq/summary");
    const firstDiff = calls.findIndex((call) => call.url.pathname.endsWith("/diff"));
    expect(settledAt).toBeGreaterThanOrEqual(0);
    expect(firstDq).toBeGreaterThan(settledAt);
    expect(firstDiff).toBeGreaterThan(settledAt);
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

  it("waits for the confirmation ever more slowly, gives up with a way to check again, and reads the lineage once when confirmed", async () => {
    const recorded = correction("88888888-8888-4888-8888-888888888888", "ltv_ratio", "79");
    const routes: Record<string, [number, unknown]> = {
      [`GET /api/loans/${LOAN_ID}/corrections`]: [200, []],
      [`GET /api/loans/${LOAN_ID}/history`]: [200, { loan_id: LOAN_ID, run_id: RUN_ID, source_file: "tape.csv", row: 3, seller_loan_number: "L-3", events: [] }],
      [`POST /api/loans/${LOAN_ID}/corrections`]: [202, recorded],
    };
    const calls = fakeFetch(routes);
    const reads = (what: string) => calls.filter((call) => call.method === "GET" && call.url.pathname.endsWith(what)).length;
    renderScreen(<LoanRecord loan={LOAN} polling={{ firstMs: 10, maxMs: 40, giveUpMs: 300 }} />);
    await screen.findByText("No events about this loan yet.");
    await userEvent.type(screen.getByLabelText("Reason"), "Appraisal re-read");
    await userEvent.click(screen.getByRole("button", { name: "Record correction" }));
    expect(await screen.findByText("being recorded")).toBeInTheDocument();
    const checkAgain = await screen.findByRole("button", { name: "Check again" }, { timeout: 3000 });
    expect(screen.getByText(/has not confirmed the new correction yet/)).toBeInTheDocument();
    const gaveUpAt = reads("/corrections");
    expect(gaveUpAt).toBeGreaterThan(3);
    await pause(150);
    expect(reads("/corrections")).toBe(gaveUpAt);
    expect(reads("/history")).toBe(1);
    routes[`GET /api/loans/${LOAN_ID}/corrections`] = [200, [recorded]];
    await userEvent.click(checkAgain);
    expect(await screen.findByRole("cell", { name: "recorded" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Check again" })).toBeNull();
    await waitFor(() => expect(reads("/history")).toBe(2));
    const confirmedAt = reads("/corrections");
    await pause(150);
    expect(reads("/corrections")).toBe(confirmedAt);
    expect(reads("/history")).toBe(2);
    expect([0, 1, 2, 3, 4, 5].map((n) => confirmDelay(n))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it("stops waiting for the confirmation when reading the corrections fails", async () => {
    const recorded = correction("88888888-8888-4888-8888-888888888888", "ltv_ratio", "79");
    const routes: Record<string, [number, unknown]> = {
      [`GET /api/loans/${LOAN_ID}/corrections`]: [200, []],
      [`GET /api/loans/${LOAN_ID}/history`]: [200, { loan_id: LOAN_ID, run_id: RUN_ID, source_file: "tape.csv", row: 3, seller_loan_number: "L-3", events: [] }],
      [`POST /api/loans/${LOAN_ID}/corrections`]: [202, recorded],
    };
    const calls = fakeFetch(routes);
    renderScreen(<LoanRecord loan={LOAN} polling={{ firstMs: 10, maxMs: 20, giveUpMs: 60_000 }} />);
    await screen.findByText("No events about this loan yet.");
    routes[`GET /api/loans/${LOAN_ID}/corrections`] = [503, { error: "The read model is unavailable", status_code: 503 }];
    await userEvent.type(screen.getByLabelText("Reason"), "Appraisal re-read");
    await userEvent.click(screen.getByRole("button", { name: "Record correction" }));
    expect(await screen.findByText("The read model is unavailable")).toBeInTheDocument();
    const failedAt = calls.length;
    await pause(150);
    expect(calls).toHaveLength(failedAt);
    expect(screen.getByRole("button", { name: "Check again" })).toBeInTheDocument();
  });

  it("opens the loan's reprocess on the loan's own rule set, focused, and gives the focus back on cancel", async () => {
    fakeFetch({
      [`GET /api/loans/${LOAN_ID}/corrections`]: [200, []],
      [`GET /api/loans/${LOAN_ID}/history`]: [200, { loan_id: LOAN_ID, run_id: RUN_ID, source_file: "tape.csv", row: 3, seller_loan_number: "L-3", events: [] }],
      "GET /api/rule-sets": [200, [{ version: "2026.12.0", description: "d", eligibility_rules: 9, current: true }]],
    });
    renderScreen(<LoanRecord loan={LOAN} />);
    const toggle = screen.getByRole("button", { name: "Reprocess with corrections…" });
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    await userEvent.click(toggle);
    const form = screen.getByRole("form", { name: "Reprocess this loan" });
    expect(toggle).toHaveAttribute("aria-expanded", "true");
    expect(toggle).toHaveAttribute("aria-controls", form.id);
    expect(screen.getByLabelText("IRR target")).toHaveFocus();
    expect(screen.getByLabelText("Rule set")).toHaveValue("2026.11.1");
    expect(screen.getByRole("option", { name: "2026.11.1 (the parent's)" })).toBeInTheDocument();
    await userEvent.click(within(form).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("form", { name: "Reprocess this loan" })).toBeNull();
    expect(toggle).toHaveFocus();
    expect(toggle).toHaveAttribute("aria-expanded", "false");
  });

  it("takes the latest correction of a field as its current value and keeps other columns", () => {
    const rows = fieldRows(LOAN, [correction("a", "ltv_ratio", "80"), correction("b", "ltv_ratio", "79")]);
    const ltv = rows.find((row) => row.field === "ltv_ratio")!;
    expect(ltv).toMatchObject({ source: "97", current: "79", corrected: true, invalid: true });
    expect(rows.find((row) => row.field === "Branch")).toMatchObject({ source: "North", current: "North", corrected: false });
  });
});

describe("reprocess", () => {
  const RULE_SETS = [
    { version: "2026.10.0", description: "d", eligibility_rules: 9, current: false },
    { version: "2026.11.1", description: "d", eligibility_rules: 9, current: true },
  ];

  it("starts from the parent's rule set and sends it, so the child is not judged by whichever is current", async () => {
    const calls = fakeFetch({
      "GET /api/rule-sets": [200, RULE_SETS],
      "GET /api/dq/summary": [200, DQ_SUMMARY],
      [`POST /api/runs/${RUN_ID}/reprocess`]: [202, { run_id: CHILD_ID }],
    });
    renderScreen(
      <Routes>
        <Route path="/runs/:runId" element={<ReprocessForm runId={RUN_ID} />} />
      </Routes>,
      { path: `/runs/${RUN_ID}` },
    );
    await screen.findByRole("option", { name: "2026.10.0 (the parent's)" });
    await waitFor(() => expect(screen.getByLabelText("Rule set")).toHaveValue("2026.10.0"));
    expect(screen.getByRole("option", { name: "2026.11.1 (current)" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Start reprocess" }));
    await waitFor(() => expect(calls.some((call) => call.method === "POST")).toBe(true));
    expect(calls.find((call) => call.method === "POST")!.body).toMatchObject({ rule_set_version: "2026.10.0" });
    expect(ruleSetLabel("2026.11.1", true, true)).toBe("2026.11.1 (the parent's, current)");
  });

  it("toggles the run's reprocess form with its state told, the focus on its first field, and back on the toggle on cancel", async () => {
    fakeFetch({ "GET /api/rule-sets": [200, RULE_SETS], "GET /api/dq/summary": [200, DQ_SUMMARY] });
    renderScreen(<ReprocessControl runId={RUN_ID} />);
    const toggle = screen.getByRole("button", { name: "Reprocess run…" });
    toggle.focus();
    await userEvent.keyboard("{Enter}");
    const form = screen.getByRole("form", { name: "Reprocess this run" });
    expect(toggle).toHaveAttribute("aria-expanded", "true");
    expect(toggle).toHaveAttribute("aria-controls", form.id);
    expect(screen.getByLabelText("IRR target")).toHaveFocus();
    await userEvent.click(within(form).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("form")).toBeNull();
    expect(toggle).toHaveFocus();
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    expect(toggle).not.toHaveAttribute("aria-controls");
  });

  it("sends only what was set and opens the child run", async () => {
    const calls = fakeFetch({
      "GET /api/rule-sets": [200, [{ version: "2026.11.1", description: "d", eligibility_rules: 9, current: true }]],
      "GET /api/dq/summary": [200, DQ_SUMMARY],
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
      "GET /api/dq/summary": [200, { ...DQ_SUMMARY, loans: 0, rule_set_version: null }],
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
