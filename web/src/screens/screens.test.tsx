import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { setSession } from "../api/client";
import { ANALYST, fakeFetch, renderScreen } from "../testing";
import { Exceptions } from "./Exceptions";
import { Login } from "./Login";
import { Runs } from "./Runs";
import { render } from "@testing-library/react";

const RUN_ID = "22222222-2222-4222-8222-222222222222";

function exception(n: number) {
  return {
    exception_id: `00000000-0000-4000-8000-00000000000${n}`,
    status: "new",
    sla_age_seconds: 7200,
    run_id: RUN_ID,
    loan_id: `10000000-0000-4000-8000-00000000000${n}`,
    seller_loan_number: `L-${n}`,
    source_file: "tape.csv",
    row: n,
    exception_type: "ltv_too_high",
    category: "eligibility",
    severity: "hard",
    message: `LTV too high on ${n}`,
    rejection_criteria: "LTV",
    disposition: "rejected",
    created_at: "2026-12-01T00:00:00Z",
  };
}

afterEach(() => setSession(null));

describe("login", () => {
  it("shows the API's own error message when the credentials are refused", async () => {
    fakeFetch({ "POST /api/auth/login": [401, { error: "Invalid username or password", status_code: 401 }] });
    render(<Login />);
    await userEvent.type(screen.getByLabelText("Username"), "ana");
    await userEvent.type(screen.getByLabelText("Password"), "wrong");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Invalid username or password");
  });

  it("keeps the tokens of a successful login for the session", async () => {
    const calls = fakeFetch({ "POST /api/auth/login": [200, { access_token: "a", refresh_token: "r", expires_in: 900 }] });
    render(<Login />);
    await userEvent.type(screen.getByLabelText("Username"), "ana");
    await userEvent.type(screen.getByLabelText("Password"), "secret");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(sessionStorage.getItem("loan-engine.session")).toContain('"access":"a"'));
    expect(String(calls[0].body)).toContain("username=ana");
  });
});

describe("runs", () => {
  it("says there are no runs yet and offers no next page when the list is empty", async () => {
    fakeFetch({ "GET /api/runs": [200, { items: [], skip: 0, limit: 20, next_cursor: null }] });
    renderScreen(<Runs />);
    expect(await screen.findByText(/No runs yet/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Next page" })).toBeDisabled();
  });

  it("asks for the next page with the cursor the API gave", async () => {
    const run = {
      run_id: RUN_ID, status: "completed", last_phase: "archive", error: null, total_loans: 3, total_balance: "1",
      exceptions_count: 1, dispositions: {}, run_weekday: 0, run_weekday_name: "Monday", created_at: null,
      started_at: null, completed_at: null, pdate: null, irr_target: null, sales_team_id: "alpha", folder: "f",
      source: { kind: "folder", location: "f" }, parent_run_id: null, attempt: 1, requested_by: null,
    };
    const calls = fakeFetch({ "GET /api/runs": [200, { items: [run], skip: 0, limit: 20, next_cursor: "CUR" }] });
    renderScreen(<Runs />);
    expect(await screen.findByRole("link", { name: `Run ${RUN_ID}` })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await waitFor(() => expect(calls.some((call) => call.url.searchParams.get("after") === "CUR")).toBe(true));
  });
});

describe("exception browser", () => {
  it("acknowledges the selected exceptions in one bulk request and reports the outcome", async () => {
    const calls = fakeFetch({
      "GET /api/exceptions": [200, { items: [exception(1), exception(2)], skip: 0, limit: 25, next_cursor: null }],
      "POST /api/exceptions/bulk/acknowledge": [200, { action: "acknowledge", requested: 2, applied: 2, pending: 0, skipped: [] }],
    });
    renderScreen(<Exceptions />, { path: `/exceptions?run_id=${RUN_ID}` });
    await userEvent.click(await screen.findByLabelText("Select all on this page"));
    await userEvent.click(screen.getByRole("button", { name: "acknowledge" }));
    expect(await screen.findByText(/acknowledge: 2 applied/)).toBeInTheDocument();
    const bulk = calls.find((call) => call.method === "POST")!;
    expect(bulk.body).toMatchObject({ exception_ids: [exception(1).exception_id, exception(2).exception_id] });
    expect(calls[0].url.searchParams.get("run_id")).toBe(RUN_ID);
  });

  it("shows a refused bulk action's error as the API gave it", async () => {
    fakeFetch({
      "GET /api/exceptions": [200, { items: [exception(1)], skip: 0, limit: 25, next_cursor: null }],
      "POST /api/exceptions/bulk/resolve": [409, { error: "Exception is not in a state to resolve", status_code: 409 }],
    });
    renderScreen(<Exceptions />);
    await userEvent.click(await screen.findByLabelText(`Select exception ${exception(1).exception_id}`));
    await userEvent.click(screen.getByRole("button", { name: "resolve" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Exception is not in a state to resolve");
  });

  it("offers waiver approval to senior analysts only", async () => {
    fakeFetch({ "GET /api/exceptions": [200, { items: [exception(1)], skip: 0, limit: 25, next_cursor: null }] });
    const { unmount } = renderScreen(<Exceptions />);
    await screen.findByText("LTV too high on 1");
    expect(screen.queryByRole("button", { name: "approve waiver" })).toBeNull();
    unmount();
    renderScreen(<Exceptions />, { me: { ...ANALYST, role: "senior_analyst" } });
    expect(await screen.findByRole("button", { name: "approve waiver" })).toBeInTheDocument();
  });

  it("says so when no exception matches the filters", async () => {
    fakeFetch({ "GET /api/exceptions": [200, { items: [], skip: 0, limit: 25, next_cursor: null }] });
    renderScreen(<Exceptions />);
    expect(await screen.findByText("No exceptions match these filters.")).toBeInTheDocument();
  });
});
