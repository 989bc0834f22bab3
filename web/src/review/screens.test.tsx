import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { User } from "../api/client";
import { ANALYST, fakeFetch, renderScreen } from "../testing";
import { Approvals } from "./Approvals";
import { CaseView } from "./CaseView";
import { ReviewQueue } from "./ReviewQueue";

const CASE_ID = "44444444-4444-4444-8444-444444444444";
const DECISION_ID = "55555555-5555-4555-8555-555555555555";
const RUN_ID = "66666666-6666-4666-8666-666666666666";
const SENIOR: User = { ...ANALYST, id: "77777777-7777-4777-8777-777777777777", username: "sam", role: "senior_analyst" };
const SUMMARY = { total_pending: 3, total_assigned: 1, total_in_progress: 1, approaching_sla: 1, breached_sla: 2, by_priority: { critical: 1, high: 2, medium: 1, low: 1 } };

function summary(overrides: Record<string, unknown> = {}) {
  return {
    case_id: CASE_ID, loan_id: "88888888-8888-4888-8888-888888888888", run_id: RUN_ID, seq: 7, seller_loan_number: "L-7",
    sales_team_id: null, score: 700, routing_reason: "borderline_score", loan_amount: "250000", status: "pending",
    assignee: null, priority: "high", priority_score: 71, releases: 0, opened_at: "2026-12-01T08:00:00Z",
    sla_deadline: "2026-12-01T16:00:00Z", sla_state: "breached", ...overrides,
  };
}

function factor(feature: string, contribution: string) {
  return { feature, description: `${feature} moves the risk`, value: "1", contribution };
}

function decision(overrides: Record<string, unknown> = {}) {
  return {
    decision_id: DECISION_ID, case_id: CASE_ID, loan_id: summary().loan_id, run_id: RUN_ID, seq: 7,
    decision_type: "analyst_decline", outcome: "decline", status: "override_pending", terms: null, conditions: [],
    fulfilled: [], reasoning: "Income cannot be verified", justification: "x".repeat(60), score: 800,
    model_leaning: "approve", is_override: true, review_time_seconds: 30, decided_by: ANALYST.id, decided_role: "analyst",
    decided_at: "2026-12-01T09:00:00Z", override_by: null, override_at: null, override_notes: null, ...overrides,
  };
}

function detail(overrides: Record<string, unknown> = {}) {
  return {
    ...summary({ status: "in_progress", assignee: ANALYST.id, score: 800 }),
    score_detail: {
      model_version: "1", score: 800, probability_default: "0.200000", risk_category: "medium",
      routing_decision: "human_review", routing_reason: "borderline_score", routing_triggers: [], policy_version: "2026.12.1",
      positive_factors: [factor("credit_score", "-0.400000")], negative_factors: [factor("ltv_ratio", "0.200000")], features: {},
    },
    loan: { seller_loan_number: "L-7", loan_amount: "250000", credit_score: "742", disposition: "to_purchase" },
    exceptions: [{ exception_id: "99999999-9999-4999-8999-999999999999", exception_type: "missing_appraisal", category: "data_quality", severity: "soft", message: "Appraisal value is missing or zero", status: "new" }],
    similar_loans: [{ loan_id: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", run_id: RUN_ID, seq: 3, seller_loan_number: "L-3", score: 810, decision: "auto_approve", distance: 0.12345 }],
    history: [],
    decisions: [],
    model_leaning: "approve",
    justification_min_length: 50,
    ...overrides,
  };
}

function showCase(me = ANALYST) {
  return renderScreen(
    <Routes>
      <Route path="/review/cases/:caseId" element={<CaseView />} />
    </Routes>,
    { path: `/review/cases/${CASE_ID}`, me },
  );
}

describe("review queue", () => {
  it("shows the summary counts, the SLA figures and each case's SLA badge and priority", async () => {
    const figures = { cases: 20, decided: 10, on_time: 9, late: 1, open: 10, open_breached: 0, breaches: 1, on_time_rate: "0.9995", warnings: 3, escalations: 1, time_to_decision_seconds: { mean: 4000, p50: 3900, p90: 7000, p95: 8000, max: 9000 } };
    fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary({ escalated_at: "2026-12-01T16:00:00Z" })], total: 1, skip: 0, limit: 25 }],
      "GET /api/review/sla-metrics": [200, { ...figures, since: "2026-11-01T00:00:00Z", until: "2026-12-01T00:00:00Z", by_priority: {} }],
    });
    renderScreen(<ReviewQueue />);
    const row = (await screen.findByRole("link", { name: "Case L-7" })).closest("tr")!;
    expect(row).toHaveTextContent("escalated");
    expect(await screen.findByText(/on time 99.95%, 1 breaches, 3 warnings/)).toHaveTextContent("median time to decision 1h 5m");
    expect(row).toHaveTextContent("SLA breached");
    expect(row).toHaveTextContent("250,000.00");
    expect(row).toHaveTextContent("high");
    expect(screen.getByText("SLA breached", { selector: "dt" }).nextSibling).toHaveTextContent("2");
    expect(screen.getByText("pending", { selector: "dt" }).nextSibling).toHaveTextContent("3");
  });

  it("sends the filters and the sort to the API and pages by skip", async () => {
    const calls = fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary()], total: 60, skip: 0, limit: 25 }],
    });
    renderScreen(<ReviewQueue />);
    await screen.findByRole("link", { name: "Case L-7" });
    await userEvent.selectOptions(screen.getByLabelText("Priority"), "high");
    await userEvent.selectOptions(screen.getByLabelText("Analyst"), "me");
    await userEvent.selectOptions(screen.getByLabelText("Sort by"), "deadline");
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await waitFor(() => {
      const last = calls.filter((call) => call.url.pathname === "/api/review/queue").at(-1)!.url.searchParams;
      expect(Object.fromEntries(last)).toMatchObject({ priority: "high", analyst: ANALYST.id, sort: "deadline", skip: "25" });
    });
    expect(screen.getByText(/Page 2 of 3/)).toBeInTheDocument();
  });

  it("assigns a pending case to the analyst and shows a refusal as the API gave it", async () => {
    const calls = fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary()], total: 1, skip: 0, limit: 25 }],
      [`POST /api/review/cases/${CASE_ID}/assign`]: [409, { error: "The assignee already holds 5 active review cases", status_code: 409 }],
    });
    renderScreen(<ReviewQueue />);
    await userEvent.click(await screen.findByRole("button", { name: "Assign to me: L-7" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The assignee already holds 5 active review cases");
    expect(calls.some((call) => call.method === "POST" && call.url.pathname.endsWith("/assign"))).toBe(true);
  });

  it("asks the API for another analyst's cases only once their whole user id is typed", async () => {
    const calls = fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary()], total: 1, skip: 0, limit: 25 }],
    });
    renderScreen(<ReviewQueue />);
    await screen.findByRole("link", { name: "Case L-7" });
    await userEvent.selectOptions(screen.getByLabelText("Analyst"), "other");
    await userEvent.type(screen.getByLabelText("Analyst id"), SENIOR.id.slice(0, 12));
    expect(screen.getByText("Enter the analyst's whole user id to see their cases.")).toBeInTheDocument();
    expect(screen.queryByRole("alert")).toBeNull();
    await userEvent.type(screen.getByLabelText("Analyst id"), SENIOR.id.slice(12));
    await screen.findByRole("link", { name: "Case L-7" });
    const asked = calls.filter((call) => call.url.pathname === "/api/review/queue").map((call) => call.url.searchParams.get("analyst"));
    expect(asked.filter((analyst) => analyst !== null)).toEqual([SENIOR.id]);
  });

  it("goes back to the last page that has cases when a page past the end comes back empty", async () => {
    const calls = fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary()], total: 30, skip: 25, limit: 25 }],
    });
    const answer = globalThis.fetch;
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input), location.origin);
      if (url.pathname === "/api/review/queue" && url.searchParams.get("skip") === "50") {
        await answer(input, init);
        return new Response(JSON.stringify({ items: [], total: 30, skip: 50, limit: 25 }), { status: 200, headers: { "Content-Type": "application/json" } });
      }
      return answer(input, init);
    }) as typeof fetch;
    renderScreen(<ReviewQueue />, { path: "/review?skip=50" });
    expect(await screen.findByRole("link", { name: "Case L-7" })).toBeInTheDocument();
    expect(screen.getByText(/Page 2 of 2/)).toBeInTheDocument();
    expect(screen.queryByText("No review cases match these filters.")).toBeNull();
    expect(calls.filter((call) => call.url.pathname === "/api/review/queue").map((call) => call.url.searchParams.get("skip"))).toEqual(["50", "25"]);
  });

  it("keeps the focus on the row acted on when its action gives way to the next", async () => {
    const routes: Record<string, [number, unknown]> = {
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary()], total: 1, skip: 0, limit: 25 }],
      [`POST /api/review/cases/${CASE_ID}/assign`]: [200, detail({ status: "assigned" })],
    };
    fakeFetch(routes);
    renderScreen(<ReviewQueue />);
    const assign = await screen.findByRole("button", { name: "Assign to me: L-7" });
    routes["GET /api/review/queue"] = [200, { items: [summary({ status: "assigned", assignee: ANALYST.id })], total: 1, skip: 0, limit: 25 }];
    await userEvent.click(assign);
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("button", { name: "Start: L-7" })));
  });

  it("says so when no case matches", async () => {
    fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [], total: 0, skip: 0, limit: 25 }],
    });
    renderScreen(<ReviewQueue />);
    expect(await screen.findByText("No review cases match these filters.")).toBeInTheDocument();
  });
});

describe("case view", () => {
  it("draws the factors, the loan, its exceptions and the similar decided loans", async () => {
    fakeFetch({ [`GET /api/review/cases/${CASE_ID}`]: [200, detail({ escalated_at: "2026-12-01T16:00:00Z" })] });
    showCase();
    const chart = await screen.findByRole("figure");
    expect(screen.getByText(/escalated to the senior analysts/)).toBeInTheDocument();
    expect(within(chart).getByText("credit_score moves the risk").closest("tr")).toHaveTextContent("safer (-0.400000)");
    expect(within(chart).getByText("ltv_ratio moves the risk").closest("tr")).toHaveTextContent("riskier (0.200000)");
    expect(chart.querySelectorAll("rect")).toHaveLength(2);
    expect(screen.getByRole("link", { name: "missing_appraisal" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "L-3" }).closest("tr")).toHaveTextContent("auto approve");
    expect(screen.getByText("loan amount").nextSibling).toHaveTextContent("250,000.00");
  });

  it("asks for a justification when the decision goes against the model, and sends it", async () => {
    const calls = fakeFetch({
      [`GET /api/review/cases/${CASE_ID}`]: [200, detail()],
      [`POST /api/review/cases/${CASE_ID}/decision`]: [200, detail({ status: "override_pending", decisions: [decision()] })],
    });
    showCase();
    await userEvent.click(await screen.findByRole("radio", { name: "Decline" }));
    expect(screen.getByText(/it is an override that needs a justification of at least 50 characters \(0 written, 50 to go\)/)).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Reasoning"), "Income cannot be verified");
    await userEvent.type(screen.getByLabelText(/Override justification/), "y".repeat(52));
    expect(screen.getByText(/52 written\)/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Submit override for approval" }));
    expect(await screen.findByText(/waits for a senior analyst's approval/)).toBeInTheDocument();
    const sent = calls.find((call) => call.method === "POST")!.body;
    expect(sent).toMatchObject({ outcome: "decline", reasoning: "Income cannot be verified", justification: "y".repeat(52), conditions: [] });
  });

  it("sends an approval's conditions of each type and shows the API's refusal as given", async () => {
    const calls = fakeFetch({
      [`GET /api/review/cases/${CASE_ID}`]: [200, detail()],
      [`POST /api/review/cases/${CASE_ID}/decision`]: [400, { error: "approve_with_conditions requires at least one condition", status_code: 400 }],
    });
    showCase();
    await userEvent.click(await screen.findByRole("radio", { name: "Approve with conditions" }));
    await userEvent.type(screen.getByLabelText("Condition 1 description"), "Two recent pay slips");
    await userEvent.click(screen.getByRole("button", { name: "Add a condition" }));
    await userEvent.selectOptions(screen.getByLabelText("Condition 2 type"), "reduced_amount");
    await userEvent.type(screen.getByLabelText("Condition 2 description"), "Lend 200,000 at most");
    await userEvent.click(screen.getByRole("button", { name: "Record decision" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("approve_with_conditions requires at least one condition");
    expect(calls.find((call) => call.method === "POST")!.body).toMatchObject({
      outcome: "approve_with_conditions",
      conditions: [
        { condition_type: "documentation", description: "Two recent pay slips" },
        { condition_type: "reduced_amount", description: "Lend 200,000 at most" },
      ],
    });
  });

  it("waits, and says so, when the API has taken the decision but not recorded it yet (202)", async () => {
    const calls = fakeFetch({
      [`GET /api/review/cases/${CASE_ID}`]: [200, detail()],
      [`POST /api/review/cases/${CASE_ID}/decision`]: [202, detail()],
    });
    showCase();
    await userEvent.type(await screen.findByLabelText("Terms"), "As applied");
    await userEvent.click(screen.getByRole("button", { name: "Record decision" }));
    expect(await screen.findByText("Your decision was sent; it shows here once it is recorded.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Record decision" })).toBeDisabled();
    expect(calls.filter((call) => call.method === "POST")).toHaveLength(1);
  });

  it("offers no more conditions than the API takes (50)", async () => {
    fakeFetch({ [`GET /api/review/cases/${CASE_ID}`]: [200, detail()] });
    showCase();
    await userEvent.click(await screen.findByRole("radio", { name: "Approve with conditions" }));
    const add = screen.getByRole("button", { name: "Add a condition" });
    for (let n = 1; n < 60 && !(add as HTMLButtonElement).disabled; n += 1) fireEvent.click(add);
    expect(add).toBeDisabled();
    expect(screen.getByLabelText("Condition 50 description")).toBeInTheDocument();
    expect(screen.queryByLabelText("Condition 51 description")).toBeNull();
  });

  it("offers no decision form to someone who is not the case's assignee", async () => {
    fakeFetch({ [`GET /api/review/cases/${CASE_ID}`]: [200, detail({ assignee: SENIOR.id })] });
    showCase();
    await screen.findByRole("figure");
    expect(screen.queryByRole("form", { name: "Decision" })).toBeNull();
  });

  it("marks an open condition of a final approval fulfilled", async () => {
    const approved = decision({
      decision_type: "analyst_approve_with_conditions", outcome: "approve_with_conditions", status: "final", is_override: false,
      conditions: [{ condition_type: "documentation", description: "Pay slips" }, { condition_type: "guarantor", description: "A parent" }],
      fulfilled: [1],
    });
    const calls = fakeFetch({
      [`GET /api/review/cases/${CASE_ID}`]: [200, detail({ status: "decided", decisions: [approved] })],
      [`POST /api/review/decisions/${DECISION_ID}/conditions/2/fulfil`]: [200, detail({ status: "decided", decisions: [{ ...approved, fulfilled: [1, 2] }] })],
    });
    showCase();
    expect(await screen.findByText("Pay slips")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Mark condition 1 fulfilled" })).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Mark condition 2 fulfilled" }));
    await waitFor(() => expect(screen.queryByRole("button", { name: "Mark condition 2 fulfilled" })).toBeNull());
    expect(calls.some((call) => call.url.pathname.endsWith("/conditions/2/fulfil"))).toBe(true);
  });
});

describe("approvals", () => {
  it("approves another analyst's override and offers no verdict on one's own", async () => {
    const own = decision({ decision_id: "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", seq: 9, decided_by: SENIOR.id });
    const calls = fakeFetch({
      "GET /api/review/pending-overrides": [200, [decision(), own]],
      "GET /api/exceptions": [200, { items: [], skip: 0, limit: 20, next_cursor: null }],
      [`POST /api/review/decisions/${DECISION_ID}/approve-override`]: [200, detail({ status: "decided" })],
    });
    renderScreen(<Approvals />, { me: SENIOR });
    await userEvent.click(await screen.findByRole("button", { name: "Approve override of loan 7" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Override on L-7 approved.");
    expect(screen.queryByRole("button", { name: "Approve override of loan 9" })).toBeNull();
    expect(screen.getByText("your own decision")).toBeInTheDocument();
    expect(screen.getByText("No waiver waits for approval.")).toBeInTheDocument();
    expect(calls.some((call) => call.url.pathname.endsWith("/approve-override"))).toBe(true);
  });

  it("sends the notes of a rejection and shows the API's refusal as given", async () => {
    const calls = fakeFetch({
      "GET /api/review/pending-overrides": [200, [decision()]],
      "GET /api/exceptions": [200, { items: [], skip: 0, limit: 20, next_cursor: null }],
      [`POST /api/review/decisions/${DECISION_ID}/reject-override`]: [400, { error: "Rejecting an override requires notes saying why", status_code: 400 }],
    });
    renderScreen(<Approvals />, { me: SENIOR });
    await userEvent.type(await screen.findByLabelText("Notes on the override of loan 7"), "  ");
    await userEvent.click(screen.getByRole("button", { name: "Reject override of loan 7" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Rejecting an override requires notes saying why");
    expect(calls.find((call) => call.method === "POST")!.body).toEqual({ notes: null });
  });
});

describe("review screens while things move", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("pages the queue once per click while the next page is still loading, never skipping a page", async () => {
    const calls = fakeFetch({
      "GET /api/review/queue/summary": [200, SUMMARY],
      "GET /api/review/queue": [200, { items: [summary()], total: 60, skip: 0, limit: 25 }],
    });
    const answer = globalThis.fetch;
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input), location.origin);
      if (url.searchParams.get("skip") === "25") await gate;
      return answer(input, init);
    }) as typeof fetch;
    renderScreen(<ReviewQueue />);
    await screen.findByRole("link", { name: "Case L-7" });
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    const skips = () => calls.filter((call) => call.url.pathname === "/api/review/queue").map((call) => call.url.searchParams.get("skip"));
    expect(screen.getByRole("button", { name: "Next page" })).toBeDisabled();
    release();
    await waitFor(() => expect(screen.getByRole("button", { name: "Next page" })).toBeEnabled());
    expect(skips()).not.toContain("50");
    expect(screen.getByText(/Page 2 of 3/)).toBeInTheDocument();
  });

  it("looks at an open case again, so a senior's approval of its override shows without a reload", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const routes: Record<string, [number, unknown]> = {
      [`GET /api/review/cases/${CASE_ID}`]: [200, detail({ status: "override_pending", decisions: [decision()] })],
    };
    const calls = fakeFetch(routes);
    showCase();
    expect(await screen.findByText(/waits for a senior analyst's approval/)).toBeInTheDocument();
    routes[`GET /api/review/cases/${CASE_ID}`] = [
      200,
      detail({ status: "decided", decisions: [decision({ status: "final", override_by: SENIOR.id, override_at: "2026-12-01T10:00:00Z" })] }),
    ];
    await vi.advanceTimersByTimeAsync(16_000);
    await waitFor(() => expect(screen.queryByText(/waits for a senior analyst's approval/)).toBeNull());
    expect(screen.getByText(/approved by 77777777/)).toBeInTheDocument();
    const reads = () => calls.filter((call) => call.method === "GET").length;
    const before = reads();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(reads()).toBe(before);
  });

  it("brings the focus to the decision form when the case is started, and to the case when the decision is recorded", async () => {
    fakeFetch({
      [`GET /api/review/cases/${CASE_ID}`]: [200, detail({ status: "assigned" })],
      [`POST /api/review/cases/${CASE_ID}/start`]: [200, detail()],
      [`POST /api/review/cases/${CASE_ID}/decision`]: [200, detail({ status: "decided", decisions: [decision({ status: "final", is_override: false, outcome: "approve", decision_type: "analyst_approve", terms: "As applied" })] })],
    });
    showCase();
    await userEvent.click(await screen.findByRole("button", { name: "Start" }));
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("heading", { name: "Decision" })));
    await userEvent.type(screen.getByLabelText("Terms"), "As applied");
    await userEvent.click(screen.getByRole("button", { name: "Record decision" }));
    await waitFor(() => expect(screen.queryByRole("form", { name: "Decision" })).toBeNull());
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("heading", { level: 1 })));
  });

  it("takes an answered override off the list before the projector has folded it, never shows an empty page and focuses the notice", async () => {
    const many = Array.from({ length: 21 }, (_, index) =>
      decision({ decision_id: `cccccccc-cccc-4ccc-8ccc-${String(index).padStart(12, "0")}`, seq: index + 1 }),
    );
    const last = many[20].decision_id;
    const routes: Record<string, [number, unknown]> = {
      "GET /api/review/pending-overrides": [200, many],
      "GET /api/exceptions": [200, { items: [], skip: 0, limit: 20, next_cursor: null }],
      [`POST /api/review/decisions/${last}/approve-override`]: [202, detail({ status: "override_pending", seq: 21, seller_loan_number: "L-21" })],
    };
    const calls = fakeFetch(routes);
    renderScreen(<Approvals />, { me: SENIOR });
    await screen.findByRole("button", { name: "Approve override of loan 1" });
    await userEvent.click(within(screen.getByRole("navigation", { name: "Overrides pages" })).getByRole("button", { name: "Next page" }));
    await userEvent.click(await screen.findByRole("button", { name: "Approve override of loan 21" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Override on L-21 approved.");
    await waitFor(() => expect(calls.filter((call) => call.url.pathname === "/api/review/pending-overrides").length).toBeGreaterThan(1));
    expect(screen.queryByRole("button", { name: "Approve override of loan 21" })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("status"));
    expect(screen.getByRole("button", { name: "Approve override of loan 1" })).toBeInTheDocument();
  });
});
