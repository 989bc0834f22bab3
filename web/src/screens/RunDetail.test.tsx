import { screen, waitFor } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import { fakeFetch, renderScreen } from "../testing";
import { RunDetail } from "./RunDetail";

const RUN_ID = "33333333-3333-4333-8333-333333333333";
const RUN = {
  run_id: RUN_ID, status: "running", last_phase: "pricing", error: null, total_loans: 10, total_balance: "100",
  exceptions_count: null, dispositions: {}, run_weekday: 0, run_weekday_name: "Monday", created_at: null,
  started_at: null, completed_at: null, pdate: "2026-12-01", irr_target: "8.05", sales_team_id: null, folder: "tapes",
  source: { kind: "folder", location: "tapes" }, parent_run_id: null, attempt: 1, requested_by: "ana",
};
const PHASE = { started_at: null, completed_at: null, duration_seconds: null, total: 10 };

function show(awaitMs?: number) {
  return renderScreen(
    <Routes>
      <Route path="/runs/:runId" element={<RunDetail awaitMs={awaitMs} />} />
    </Routes>,
    { path: `/runs/${RUN_ID}` },
  );
}

describe("run detail", () => {
  it("draws each phase's progress of a running run and offers no reports yet", async () => {
    fakeFetch({
      [`GET /api/runs/${RUN_ID}`]: [200, RUN],
      [`GET /api/runs/${RUN_ID}/progress`]: [200, {
        run_id: RUN_ID, status: "running", last_phase: "pricing", overall_percent: "42.50", estimated_seconds_left: 7,
        phases: [
          { ...PHASE, phase: "ingest", status: "completed", processed: 10 },
          { ...PHASE, phase: "pricing", status: "running", processed: 4 },
        ],
      }],
    });
    show();
    expect(await screen.findByText("Overall 42.50%", { exact: false })).toBeInTheDocument();
    const phases = screen.getByRole("list", { name: "Phases" });
    expect(phases).toHaveTextContent("ingest");
    expect(phases).toHaveTextContent("4 / 10");
    expect(screen.queryByRole("heading", { name: "Reports" })).toBeNull();
  });

  it.each(["completed", "decided"])("offers each report of a %s run for download", async (status) => {
    const done = { ...RUN, status, last_phase: "archive" };
    fakeFetch({
      [`GET /api/runs/${RUN_ID}`]: [200, done],
      [`GET /api/runs/${RUN_ID}/progress`]: [200, {
        run_id: RUN_ID, status, last_phase: "archive", overall_percent: "100", estimated_seconds_left: 0, phases: [],
      }],
      [`GET /api/summary/${RUN_ID}`]: [200, {
        run_id: RUN_ID, total_loans: 10, total_balance: "100", exceptions_count: 1,
        eligibility_checks: { eligible: 9, to_purchase: 8, projected: 1, rejected: 1, total_loans: 10, exceptions_by_severity: { hard: 1 }, exceptions_by_type: {}, dq: {} },
      }],
      [`GET /api/runs/${RUN_ID}/notebook-outputs`]: [200, [
        { key: "purchase_tape", name: "purchase_tape.csv", rows: 8, size: 100, sha256: "x", last_modified: "2026-12-01T00:00:00Z" },
      ]],
      [`GET /api/runs/${RUN_ID}/archive`]: [200, { input: [], output: [] }],
      ["GET /api/loans"]: [200, { items: [], skip: 0, limit: 25, next_cursor: null }],
    });
    show();
    expect(await screen.findByRole("button", { name: "Download purchase_tape.csv" })).toBeEnabled();
    expect(await screen.findByText("hard exceptions")).toBeInTheDocument();
    expect(await screen.findByText("No loans match.")).toBeInTheDocument();
  });

  it("waits for a run just requested that the API does not list yet, then shows it", async () => {
    const routes: Record<string, [number, unknown]> = {
      [`GET /api/runs/${RUN_ID}`]: [404, { error: "Run not found", status_code: 404 }],
    };
    const calls = fakeFetch(routes);
    show();
    expect(await screen.findByText("Waiting for the run to be recorded…")).toBeInTheDocument();
    await waitFor(() => expect(calls.filter((call) => call.url.pathname === `/api/runs/${RUN_ID}`).length).toBeGreaterThan(1), { timeout: 5000 });
    expect(screen.queryByRole("alert")).toBeNull();
    routes[`GET /api/runs/${RUN_ID}`] = [200, RUN];
    expect(await screen.findByRole("heading", { name: new RegExp(`Run ${RUN_ID}`) }, { timeout: 5000 })).toBeInTheDocument();
  });

  it("says the run is not found once it has waited long enough", async () => {
    fakeFetch({ [`GET /api/runs/${RUN_ID}`]: [404, { error: "Run not found", status_code: 404 }] });
    show(100);
    expect(await screen.findByRole("alert")).toHaveTextContent("Run not found");
  });
});
