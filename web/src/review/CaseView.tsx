import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, data } from "../api/client";
import { useMe } from "../auth";
import { Empty, ErrorMessage, Loading, StatusBadge, formatDate } from "../components/common";
import { DecisionForm } from "./DecisionForm";
import { FactorsChart } from "./FactorsChart";
import { PriorityBadge, SlaBadge } from "./parts";
import { actionLabel, caseActions, isReviewer, money, isSenior, openConditions, who, type CaseAction, type CaseDetail, type DecisionView } from "./review";
import "./review.css";

const POLL_MS = 15_000;
const MONEY_FIELDS = new Set(["loan_amount", "purchase_price", "appraisal_value"]);

const LOAN_FIELDS = [
  "seller_loan_number", "loan_amount", "note_rate", "ltv_ratio", "dti_ratio", "credit_score", "property_type",
  "occupancy_status", "loan_purpose", "purchase_price", "appraisal_value", "disposition", "final_price", "dq_score",
  "source_file", "row",
];

function useRefresh() {
  const client = useQueryClient();
  return (detail: CaseDetail) => {
    client.setQueryData(["review-case", detail.case_id], detail);
    // A 202 answer (published, not yet folded) shows the case as it was: look again shortly.
    setTimeout(() => void client.invalidateQueries({ queryKey: ["review-case", detail.case_id] }), 3000);
    void client.invalidateQueries({ queryKey: ["review-queue"] });
    void client.invalidateQueries({ queryKey: ["review-summary"] });
    void client.invalidateQueries({ queryKey: ["pending-overrides"] });
  };
}

/** One review case (SPEC §8): what the model says and why, the loan, its exceptions, the five most
 * similar decided loans, the lifecycle actions, the decision form and the decisions taken. */
export function CaseView() {
  const { caseId = "" } = useParams();
  const me = useMe();
  const refresh = useRefresh();
  const detail = useQuery({
    queryKey: ["review-case", caseId],
    queryFn: async () => data(await api.GET("/api/review/cases/{case_id}", { params: { path: { case_id: caseId } } })),
    // Others act on the case too (a senior approves or rejects an override, reassigns or releases
    // it; the SLA job warns and escalates): look again while it is open, as the queue does.
    refetchInterval: (query) => (query.state.data && query.state.data.status !== "decided" ? POLL_MS : false),
  });
  const heading = useRef<HTMLHeadingElement>(null);
  const status = detail.data?.status;
  const seen = useRef(status);
  useEffect(() => {
    // An action or a decision changes the status and takes away the control that had the focus
    // (Start, the decision form): bring the focus to the decision form when it opens, else to
    // the case's heading, instead of leaving it on the page's body.
    if (seen.current !== undefined && status !== seen.current && (!document.activeElement || document.activeElement === document.body)) {
      (document.getElementById("decision-title") ?? heading.current)?.focus();
    }
    seen.current = status;
  }, [status]);
  const [assignee, setAssignee] = useState("");
  const [notes, setNotes] = useState("");
  const act = useMutation({
    mutationFn: async (action: CaseAction) =>
      data(
        await api.POST("/api/review/cases/{case_id}/{action}", {
          params: { path: { case_id: caseId, action } },
          body: { assignee: action === "assign" && assignee.trim() ? assignee.trim() : null, notes: notes.trim() || null },
        }),
      ),
    onSuccess: (updated) => {
      refresh(updated);
      setNotes("");
    },
  });

  if (detail.isPending) return <Loading />;
  if (detail.error || !detail.data) return <ErrorMessage error={detail.error} />;
  const c = detail.data;
  const name = c.seller_loan_number ?? `loan ${c.seq}`;
  const score = c.score_detail;
  const actions = caseActions(me, c);
  const deciding = c.status === "in_progress" && c.assignee === me.id;

  return (
    <section aria-labelledby="case-title">
      <p>
        <Link to="/review">← Review queue</Link>
      </p>
      <h1 id="case-title" ref={heading} tabIndex={-1}>
        Case {name} <StatusBadge status={c.status} /> <PriorityBadge priority={c.priority} /> <SlaBadge state={c.sla_state} deadline={c.sla_deadline} />
      </h1>
      <dl className="facts">
        <dt>Score</dt>
        <dd>
          <strong>{c.score}</strong> / 1000{score ? ` (${score.risk_category} risk, PD ${score.probability_default})` : ""}
        </dd>
        <dt>Why review</dt>
        <dd>
          {c.routing_reason.replace(/_/g, " ")}
          {score && score.routing_triggers.length > 0 ? ` (${score.routing_triggers.join(", ")})` : ""}
        </dd>
        <dt>Model leans</dt>
        <dd>{c.model_leaning}</dd>
        <dt>Model</dt>
        <dd>{score ? `version ${score.model_version}, policy ${score.policy_version}` : "—"}</dd>
        <dt>Assignee</dt>
        <dd>{who(c.assignee, me)}</dd>
        <dt>SLA deadline</dt>
        <dd>
          {formatDate(c.sla_deadline)}
          {c.sla_warned_at ? `; warned ${formatDate(c.sla_warned_at)}` : ""}
          {c.sla_breached_at ? `; breached ${formatDate(c.sla_breached_at)}` : ""}
          {c.escalated_at ? `; escalated to the senior analysts ${formatDate(c.escalated_at)}` : ""}
        </dd>
        <dt>Opened</dt>
        <dd>{formatDate(c.opened_at)}</dd>
        <dt>Run</dt>
        <dd>
          <Link to={`/runs/${c.run_id}`}>{c.run_id.slice(0, 8)}</Link>, <Link to={`/runs/${c.run_id}/loans/${c.loan_id}`}>loan view</Link>
        </dd>
      </dl>
      {actions.length > 0 && (
        <form className="card" aria-label="Work on this case" onSubmit={(e) => e.preventDefault()}>
          <div className="toolbar">
            <label>
              Notes
              <input value={notes} onChange={(e) => setNotes(e.target.value)} maxLength={4000} />
            </label>
            {isSenior(me.role) && actions.includes("assign") && (
              <label>
                Assignee id (blank: yourself)
                <input value={assignee} onChange={(e) => setAssignee(e.target.value)} placeholder="me" />
              </label>
            )}
            {actions.map((action) => (
              <button key={action} type="button" disabled={act.isPending} onClick={() => act.mutate(action)}>
                {action === "assign" && assignee.trim() ? "Assign" : actionLabel(action)}
              </button>
            ))}
          </div>
          <ErrorMessage error={act.error} />
        </form>
      )}
      {c.status === "override_pending" && (
        <p className="notice" role="status">
          The decision goes against the model and waits for a senior analyst's approval.
        </p>
      )}
      <h2>Score factors</h2>
      {score ? <FactorsChart positive={score.positive_factors} negative={score.negative_factors} /> : <Empty>The loan's score is not projected yet.</Empty>}
      {deciding && <DecisionForm key={c.decisions.length} detail={c} />}
      <Decisions detail={c} onChange={refresh} canFulfil={isReviewer(me.role)} me={me} />
      <h2>The loan</h2>
      {c.loan ? (
        <dl className="facts">
          {LOAN_FIELDS.map((field) => (
            <div key={field} className="fact">
              <dt>{field.replace(/_/g, " ")}</dt>
              <dd>{c.loan![field] == null || c.loan![field] === "" ? "—" : MONEY_FIELDS.has(field) ? money(String(c.loan![field])) : String(c.loan![field])}</dd>
            </div>
          ))}
        </dl>
      ) : (
        <Empty>The loan is not projected yet.</Empty>
      )}
      <h2>Exceptions</h2>
      {c.exceptions.length === 0 ? (
        <Empty>The loan has no exceptions.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Severity</th>
              <th scope="col">Category</th>
              <th scope="col">Message</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {c.exceptions.map((e) => (
              <tr key={e.exception_id}>
                <td>
                  <Link to={`/exceptions/${e.exception_id}`}>{e.exception_type}</Link>
                </td>
                <td>{e.severity}</td>
                <td>{e.category}</td>
                <td>{e.message}</td>
                <td>
                  <StatusBadge status={e.status} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Similar decided loans</h2>
      {c.similar_loans.length === 0 ? (
        <Empty>No decided loan to compare with yet.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Loan</th>
              <th scope="col">Score</th>
              <th scope="col">Decision</th>
              <th scope="col">Distance</th>
            </tr>
          </thead>
          <tbody>
            {c.similar_loans.map((loan) => (
              <tr key={loan.loan_id}>
                <td>
                  <Link to={`/runs/${loan.run_id}/loans/${loan.loan_id}`}>{loan.seller_loan_number ?? `loan ${loan.seq}`}</Link>
                </td>
                <td className="num">{loan.score}</td>
                <td>{loan.decision.replace(/_/g, " ")}</td>
                <td className="num">{loan.distance.toFixed(3)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>History</h2>
      {c.history.length === 0 ? (
        <Empty>No actions yet.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">By</th>
              <th scope="col">From → to</th>
              <th scope="col">Applied</th>
              <th scope="col">Notes</th>
            </tr>
          </thead>
          <tbody>
            {c.history.map((entry) => (
              <tr key={entry.event_id}>
                <td>{formatDate(entry.occurred_at)}</td>
                <td>{entry.action}</td>
                <td>
                  {who(entry.actor_id, me)} ({entry.actor_role})
                </td>
                <td>
                  {entry.from_status ?? "—"} → {entry.to_status ?? "—"}
                </td>
                <td>{entry.applied ? "yes" : `no${entry.reason ? `: ${entry.reason}` : ""}`}</td>
                <td>{entry.notes ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Decisions({
  detail,
  onChange,
  canFulfil,
  me,
}: {
  detail: CaseDetail;
  onChange: (detail: CaseDetail) => void;
  canFulfil: boolean;
  me: { id: string };
}) {
  const fulfil = useMutation({
    mutationFn: async ({ decision, ordinal }: { decision: DecisionView; ordinal: number }) =>
      data(
        await api.POST("/api/review/decisions/{decision_id}/conditions/{ordinal}/fulfil", {
          params: { path: { decision_id: decision.decision_id, ordinal } },
          body: {},
        }),
      ),
    onSuccess: onChange,
  });
  if (detail.decisions.length === 0) return null;
  return (
    <>
      <h2>Decisions</h2>
      <ErrorMessage error={fulfil.error} />
      <ol className="decisions">
        {detail.decisions.map((decision) => {
          const open = openConditions(decision);
          const final = decision.status === "final" && detail.status === "decided";
          return (
            <li key={decision.decision_id} className="card">
              <p>
                <strong>{decision.decision_type.replace(/_/g, " ")}</strong> <StatusBadge status={decision.status} /> by {who(decision.decided_by, me)} (
                {decision.decided_role}), {formatDate(decision.decided_at)}
                {decision.review_time_seconds != null ? `, after ${decision.review_time_seconds} s of review` : ""}
              </p>
              {decision.terms && <p>Terms: {decision.terms}</p>}
              {decision.reasoning && <p>Reasoning: {decision.reasoning}</p>}
              {decision.is_override && (
                <p>
                  Override (the model leaned {decision.model_leaning}): {decision.justification}
                  {decision.override_by && ` — ${decision.status === "override_rejected" ? "rejected" : "approved"} by ${who(decision.override_by, me)}${decision.override_notes ? `: ${decision.override_notes}` : ""}`}
                </p>
              )}
              {decision.conditions.length > 0 && (
                <ul aria-label="Conditions" className="condition-list">
                  {decision.conditions.map((condition, index) => {
                    const ordinal = index + 1;
                    const done = !open.includes(ordinal);
                    return (
                      <li key={ordinal}>
                        <span className="badge">{String(condition.condition_type ?? "").replace(/_/g, " ")}</span> {String(condition.description ?? "")}{" "}
                        {done ? (
                          <span className="badge badge-resolved">fulfilled</span>
                        ) : (
                          canFulfil &&
                          final && (
                            <button type="button" disabled={fulfil.isPending} onClick={() => fulfil.mutate({ decision, ordinal })}>
                              Mark condition {ordinal} fulfilled
                            </button>
                          )
                        )}
                      </li>
                    );
                  })}
                </ul>
              )}
            </li>
          );
        })}
      </ol>
    </>
  );
}
