// The exception lifecycle as the API enforces it (SPEC §7): which actions a person is offered.
// The API stays the authority: an action it refuses shows its own message.
export type Action =
  | "acknowledge" | "assign" | "start" | "comment" | "resolve" | "waive" | "reopen" | "approve-waiver" | "reject-waiver";
export type Status = "new" | "acknowledged" | "in_progress" | "waiver_pending" | "resolved" | "waived" | "reopened";

export const ACTIONS: Action[] = ["acknowledge", "assign", "start", "comment", "resolve", "waive", "reopen", "approve-waiver", "reject-waiver"];
const ALL: Status[] = ["new", "acknowledged", "in_progress", "waiver_pending", "resolved", "waived", "reopened"];
const CLOSED: Status[] = ["resolved", "waived"];

export const ALLOWED_FROM: Record<Action, Status[]> = {
  acknowledge: ["new"],
  assign: ALL.filter((status) => !CLOSED.includes(status)),
  start: ["acknowledged", "reopened"],
  comment: ALL,
  resolve: ["in_progress"],
  waive: ["in_progress"],
  reopen: CLOSED,
  "approve-waiver": ["waiver_pending"],
  "reject-waiver": ["waiver_pending"],
};
export const NOTES_REQUIRED: Action[] = ["comment", "resolve", "waive"];

/** The actions a role may take at all (bulk), or from `status` (one exception). */
export function actionsFor(role: string, status?: Status): Action[] {
  return ACTIONS.filter((action) => {
    if (role === "sales_team" && action !== "comment") return false;
    if ((action === "approve-waiver" || action === "reject-waiver") && !["senior_analyst", "admin"].includes(role)) return false;
    return status === undefined || ALLOWED_FROM[action].includes(status);
  });
}

export function actionLabel(action: Action): string {
  return action.replace("-", " ");
}
