import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { fakeFetch, renderScreen } from "../testing";
import { NotificationBell, Notifications } from "./Notifications";

const CASE_ID = "44444444-4444-4444-8444-444444444444";

function note(n: number, read = false) {
  return {
    notification_id: `cccccccc-cccc-4ccc-8ccc-00000000000${n}`, kind: "sla_breach", severity: "critical",
    title: `Case ${n} breached its SLA`, message: `The case of loan ${n} is past its deadline`, team_id: null, run_id: null,
    case_id: CASE_ID, decision_id: null, occurred_at: "2026-12-01T10:00:00Z", read,
  };
}

describe("notifications", () => {
  it("shows the unread count on the bell", async () => {
    const calls = fakeFetch({ "GET /api/notifications": [200, { items: [note(1)], total: 3, unread: 3, skip: 0, limit: 1 }] });
    renderScreen(<NotificationBell />);
    expect(await screen.findByRole("link", { name: "Notifications, 3 unread" })).toHaveTextContent("3");
    expect(calls[0].url.searchParams.get("unread")).toBe("true");
  });

  it("lists the notifications with a link to their case and marks one read", async () => {
    const calls = fakeFetch({
      "GET /api/notifications": [200, { items: [note(1), note(2, true)], total: 2, unread: 1, skip: 0, limit: 25 }],
      [`POST /api/notifications/${note(1).notification_id}/read`]: [200, note(1, true)],
    });
    renderScreen(<Notifications />);
    expect(await screen.findByText("Case 1 breached its SLA")).toBeInTheDocument();
    expect(screen.getAllByRole("link", { name: "open the case" })[0]).toHaveAttribute("href", `/review/cases/${CASE_ID}`);
    expect(screen.queryByRole("button", { name: "Mark read: Case 2 breached its SLA" })).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Mark read: Case 1 breached its SLA" }));
    await waitFor(() => expect(calls.some((call) => call.method === "POST" && call.url.pathname.endsWith("/read"))).toBe(true));
  });

  it("keeps the focus on a notification marked read, whose button goes", async () => {
    const routes: Record<string, [number, unknown]> = {
      "GET /api/notifications": [200, { items: [note(1), note(2)], total: 2, unread: 2, skip: 0, limit: 25 }],
      [`POST /api/notifications/${note(1).notification_id}/read`]: [200, note(1, true)],
    };
    fakeFetch(routes);
    renderScreen(<Notifications />);
    const button = await screen.findByRole("button", { name: "Mark read: Case 1 breached its SLA" });
    routes["GET /api/notifications"] = [200, { items: [note(1, true), note(2)], total: 2, unread: 1, skip: 0, limit: 25 }];
    await userEvent.click(button);
    await waitFor(() => expect(screen.queryByRole("button", { name: "Mark read: Case 1 breached its SLA" })).toBeNull());
    await waitFor(() => expect(document.activeElement).toBe(screen.getByText("Case 1 breached its SLA").closest("li")));
  });

  it("marks all read and shows a refusal as the API gave it", async () => {
    fakeFetch({
      "GET /api/notifications": [200, { items: [note(1)], total: 1, unread: 1, skip: 0, limit: 25 }],
      "POST /api/notifications/read-all": [503, { error: "The broker is unavailable", status_code: 503 }],
    });
    renderScreen(<Notifications />);
    await userEvent.click(await screen.findByRole("button", { name: "Mark all read" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The broker is unavailable");
  });

  it("says so when there is nothing to read, and asks only for unread ones when told", async () => {
    const calls = fakeFetch({ "GET /api/notifications": [200, { items: [], total: 0, unread: 0, skip: 0, limit: 25 }] });
    renderScreen(<Notifications />);
    expect(await screen.findByText("No notifications yet.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Mark all read" })).toBeDisabled();
    await userEvent.click(screen.getByRole("checkbox", { name: "Only unread" }));
    expect(await screen.findByText("No unread notifications.")).toBeInTheDocument();
    expect(calls.at(-1)!.url.searchParams.get("unread")).toBe("true");
  });
});
