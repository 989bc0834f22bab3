// The credit review rules the screens show (SPEC §8), as the API enforces them in
// services/gateway/review/{domain,decisions}.py. The API stays the authority: an action or a
// decision it refuses shows its own message.
import type { Schemas } from "../api/client";

export type CaseSummary = Schemas["CaseSummary"];
export type CaseDetail = Schemas["CaseDetail"];
export type DecisionView = Schemas["DecisionView"];
export type CaseStatus = CaseSummary["status"];
export type Priority = CaseSummary["priority"];
export type SlaState = CaseSummary["sla_state"];
export type Outcome = Schemas["DecisionBody"]["outcome"];
export type ConditionType = Schemas["ConditionIn"]["condition_type"];
export type CaseAction = "assign" | "start" | "release";
export type Leaning = CaseDetail["model_leaning"];

export const CASE_STATUSES: CaseStatus[] = ["pending", "assigned", "in_progress", "override_pending", "decided"];
export const PRIORITIES: Priority[] = ["critical", "high", "medium", "low"];
export const SORTS = [
  ["priority", "priority (highest first)"],
  ["deadline", "SLA deadline (nearest first)"],
  ["created", "opened (oldest first)"],
] as const;
export type Sort = (typeof SORTS)[number][0];
export const OUTCOMES: [Outcome, string][] = [
  ["approve", "Approve with terms"],
  ["approve_with_conditions", "Approve with conditions"],
  ["decline", "Decline"],
];
export const CONDITION_TYPES: ConditionType[] = ["documentation", "collateral", "guarantor", "reduced_amount", "reduced_term", "other"];
const SENIOR = ["senior_analyst", "admin"];
const REVIEWERS = ["analyst", ...SENIOR];

export function isSenior(role: string): boolean {
  return SENIOR.includes(role);
}

export function isReviewer(role: string): boolean {
  return REVIEWERS.includes(role);
}

/** The lifecycle actions a person is offered on a case: assign (to themselves) a pending case,
 * start their own assigned case, release their own active case (a senior, anyone's). */
export function caseActions(me: { id: string; role: string }, item: Pick<CaseSummary, "status" | "assignee">): CaseAction[] {
  if (!isReviewer(me.role)) return [];
  const mine = item.assignee === me.id;
  const actions: CaseAction[] = [];
  if (item.status === "pending" || (item.status === "assigned" && isSenior(me.role) && !mine)) actions.push("assign");
  if (item.status === "assigned" && mine) actions.push("start");
  if ((item.status === "assigned" || item.status === "in_progress") && (mine || isSenior(me.role))) actions.push("release");
  return actions;
}

export function actionLabel(action: CaseAction): string {
  return action === "assign" ? "Assign to me" : action === "start" ? "Start" : "Release";
}

/** Whether the case's SLA state asks for attention, and how to say it. */
export function slaLabel(state: SlaState): string {
  return { ok: "within SLA", approaching: "SLA approaching", breached: "SLA breached", met: "SLA met" }[state];
}

/** Time left until a deadline ("3h 20m left", "45m overdue"), from `now`. */
export function timeLeft(deadline: string, now: Date = new Date()): string {
  const minutes = Math.round((new Date(deadline).getTime() - now.getTime()) / 60_000);
  const size = Math.abs(minutes);
  const text = size >= 60 ? `${Math.floor(size / 60)}h ${size % 60}m` : `${size}m`;
  return minutes >= 0 ? `${text} left` : `${text} overdue`;
}

/** Which way an outcome goes: approving or declining. */
export function direction(outcome: Outcome): Leaning {
  return outcome === "decline" ? "decline" : "approve";
}

/** A decision against the model's leaning is an override: a justification and a second person. */
export function isOverride(outcome: Outcome, leaning: Leaning): boolean {
  return direction(outcome) !== leaning;
}

// The characters Python's str.strip() removes (str.isspace): JavaScript's trim() differs (it
// keeps U+001C–U+001F and U+0085, and strips U+FEFF, which Python keeps).
const PY_SPACE = "[\\t\\n\\v\\f\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "g");

/** A text trimmed as the API trims it (Python's `str.strip()`). */
export function pyStrip(text: string): string {
  return text.replace(PY_STRIP, "");
}

/** A text's length as the API counts it: characters (code points) after trimming. */
export function trimmedLength(text: string): number {
  return [...pyStrip(text)].length;
}

/** Which of a decision's conditions still wait to be fulfilled (ordinals from 1). */
export function openConditions(decision: Pick<DecisionView, "conditions" | "fulfilled">): number[] {
  return decision.conditions.map((_, index) => index + 1).filter((ordinal) => !decision.fulfilled.includes(ordinal));
}

/** A user id as people read it: "you" for oneself, else its first characters. */
export function who(id: string | null | undefined, me: { id: string }): string {
  if (!id) return "—";
  return id === me.id ? "you" : id.slice(0, 8);
}

/** A SHAP contribution (log-odds text) as a number for drawing; 0 when it is not a number. */
export function contribution(text: unknown): number {
  const value = Number(text);
  return Number.isFinite(value) ? value : 0;
}

/** A rate the API gives as a decimal string ("0.9995") as a percentage with every digit kept
 * ("99.95%"): no float on the way, so 0.9995 is never shown as 99.9 or 100.0. */
export function percent(rate: string): string {
  const match = /^(\d+)(?:\.(\d*))?$/.exec(rate.trim());
  if (!match) return rate;
  const fraction = (match[2] ?? "").padEnd(2, "0");
  const whole = (BigInt(match[1]) * 100n + BigInt(fraction.slice(0, 2))).toString();
  const rest = fraction.slice(2).replace(/0+$/, "");
  return `${whole}${rest ? `.${rest}` : ""}%`;
}

/** How many conditions one decision may carry (the API's `DecisionBody.conditions`). */
export const MAX_CONDITIONS = 50;

/** An amount the API gives as a decimal string, for reading: thousands grouped and at least two
 * decimals ("3283656.1" → "3,283,656.10"), built from the digits themselves (never a float, so no
 * digit is lost however large); text that is not a plain decimal is shown as given. */
export function money(amount: string | null | undefined): string {
  if (amount == null || amount === "") return "—";
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(amount.trim());
  if (!match) return amount;
  const [, sign, whole, fraction = ""] = match;
  const grouped = whole.replace(/^0+(?=\d)/, "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}${grouped}.${fraction.padEnd(2, "0")}`;
}
