import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { api, data } from "../api/client";
import { useMe } from "../auth";
import { Empty, ErrorMessage, Loading, Pager, formatDate, useCursorPager } from "../components/common";
import { SkipPager } from "./parts";
import { who, type DecisionView } from "./review";
import "./review.css";

const PAGE = 20;

/** Four-eyes approvals for senior analysts and admins: overrides of review decisions
 * (`GET /review/pending-overrides`) next to waivers of hard exceptions (`status=waiver_pending`). */
export function Approvals() {
  return (
    <section aria-labelledby="approvals-title">
      <h1 id="approvals-title">Approvals</h1>
      <p className="hint">Decisions against the model and waivers of hard exceptions wait here for a second person. You cannot approve your own.</p>
      <Overrides />
      <Waivers />
    </section>
  );
}

function Overrides() {
  const me = useMe();
  const client = useQueryClient();
  const [skip, setSkip] = useState(0);
  const [notes, setNotes] = useState<Record<string, string>>({});
  const [done, setDone] = useState<string | null>(null);
  // Overrides answered here: an answer may come back before the projector has folded it (202), so
  // the list can still show them for a moment; they must not be offered (and refused) twice.
  const [answered, setAnswered] = useState<ReadonlySet<string>>(new Set());
  const pending = useQuery({
    queryKey: ["pending-overrides"],
    queryFn: async () => data(await api.GET("/api/review/pending-overrides")),
    refetchInterval: 15_000,
  });
  const verdict = useMutation({
    mutationFn: async ({ decision, approve }: { decision: DecisionView; approve: boolean }) =>
      data(
        await api.POST("/api/review/decisions/{decision_id}/{verdict}", {
          params: { path: { decision_id: decision.decision_id, verdict: approve ? "approve-override" : "reject-override" } },
          body: { notes: notes[decision.decision_id]?.trim() || null },
        }),
      ),
    onSuccess: (detail, { decision, approve }) => {
      setAnswered((all) => new Set(all).add(decision.decision_id));
      client.setQueryData(["review-case", detail.case_id], detail);
      setDone(`Override on ${detail.seller_loan_number ?? `loan ${detail.seq}`} ${approve ? "approved" : "rejected"}.`);
      void client.invalidateQueries({ queryKey: ["pending-overrides"] });
      void client.invalidateQueries({ queryKey: ["review-queue"] });
    },
  });
  // The row answered goes, and its button with it: the focus goes to the notice that says so.
  const notice = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (done && (!document.activeElement || document.activeElement === document.body)) notice.current?.focus();
  }, [done, answered]);
  const items = (pending.data ?? []).filter((decision) => !answered.has(decision.decision_id));
  // The last override of the last page answered: show the page before, not an empty one.
  const start = Math.min(skip, Math.max(0, Math.floor((items.length - 1) / PAGE) * PAGE));
  const page = items.slice(start, start + PAGE);
  return (
    <section aria-labelledby="overrides-title">
      <h2 id="overrides-title">Review overrides</h2>
      {done && (
        <p className="notice" role="status" ref={notice} tabIndex={-1}>
          {done}
        </p>
      )}
      <ErrorMessage error={verdict.error} />
      <ErrorMessage error={pending.error} />
      {pending.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No override waits for approval.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Case</th>
              <th scope="col">Decision</th>
              <th scope="col">Score</th>
              <th scope="col">Model leaned</th>
              <th scope="col">Justification</th>
              <th scope="col">By</th>
              <th scope="col">When</th>
              <th scope="col">Notes</th>
              <th scope="col">Verdict</th>
            </tr>
          </thead>
          <tbody>
            {page.map((decision) => {
              const own = decision.decided_by === me.id;
              const label = `loan ${decision.seq}`;
              return (
                <tr key={decision.decision_id}>
                  <td>{decision.case_id ? <Link to={`/review/cases/${decision.case_id}`}>Case of {label}</Link> : label}</td>
                  <td>{decision.decision_type.replace(/_/g, " ")}</td>
                  <td className="num">{decision.score}</td>
                  <td>{decision.model_leaning ?? "—"}</td>
                  <td className="justification">{decision.justification}</td>
                  <td>
                    {who(decision.decided_by, me)} ({decision.decided_role})
                  </td>
                  <td>{formatDate(decision.decided_at)}</td>
                  <td>
                    <label>
                      <span className="visually-hidden">Notes on the override of {label}</span>
                      <input
                        value={notes[decision.decision_id] ?? ""}
                        onChange={(e) => setNotes((all) => ({ ...all, [decision.decision_id]: e.target.value }))}
                        placeholder="required to reject"
                        maxLength={4000}
                      />
                    </label>
                  </td>
                  <td className="row-actions">
                    {own ? (
                      <span className="hint">your own decision</span>
                    ) : (
                      <>
                        <button type="button" disabled={verdict.isPending} onClick={() => verdict.mutate({ decision, approve: true })} aria-label={`Approve override of ${label}`}>
                          Approve
                        </button>
                        <button type="button" className="danger" disabled={verdict.isPending} onClick={() => verdict.mutate({ decision, approve: false })} aria-label={`Reject override of ${label}`}>
                          Reject
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {items.length > PAGE && <SkipPager skip={start} limit={PAGE} total={items.length} onSkip={setSkip} label="Overrides" />}
    </section>
  );
}

function Waivers() {
  const client = useQueryClient();
  const pager = useCursorPager();
  const [notes, setNotes] = useState<Record<string, string>>({});
  const waivers = useQuery({
    queryKey: ["exceptions", { status: "waiver_pending" }, pager.after],
    queryFn: async () => data(await api.GET("/api/exceptions", { params: { query: { status: "waiver_pending", limit: PAGE, after: pager.after } } })),
  });
  const verdict = useMutation({
    mutationFn: async ({ id, approve }: { id: string; approve: boolean }) =>
      data(
        await api.POST("/api/exceptions/{exception_id}/{action}", {
          params: { path: { exception_id: id, action: approve ? "approve-waiver" : "reject-waiver" } },
          body: { notes: notes[id]?.trim() || null },
        }),
      ),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["exceptions"] }),
  });
  const items = waivers.data?.items ?? [];
  return (
    <section aria-labelledby="waivers-title">
      <h2 id="waivers-title">Exception waivers</h2>
      <ErrorMessage error={verdict.error} />
      <ErrorMessage error={waivers.error} />
      {waivers.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No waiver waits for approval.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Exception</th>
              <th scope="col">Loan</th>
              <th scope="col">Message</th>
              <th scope="col">Severity</th>
              <th scope="col">Notes</th>
              <th scope="col">Verdict</th>
            </tr>
          </thead>
          <tbody>
            {items.map((row) => (
              <tr key={row.exception_id}>
                <td>
                  <Link to={`/exceptions/${row.exception_id}`}>{row.exception_type}</Link>
                </td>
                <td>
                  <Link to={`/runs/${row.run_id}/loans/${row.loan_id}`}>{row.seller_loan_number ?? `row ${row.row}`}</Link>
                </td>
                <td>{row.message}</td>
                <td>{row.severity}</td>
                <td>
                  <label>
                    <span className="visually-hidden">Notes on the waiver of {row.exception_id}</span>
                    <input value={notes[row.exception_id] ?? ""} onChange={(e) => setNotes((all) => ({ ...all, [row.exception_id]: e.target.value }))} maxLength={4000} />
                  </label>
                </td>
                <td className="row-actions">
                  <button type="button" disabled={verdict.isPending} onClick={() => verdict.mutate({ id: row.exception_id, approve: true })} aria-label={`Approve waiver ${row.exception_id}`}>
                    Approve
                  </button>
                  <button type="button" className="danger" disabled={verdict.isPending} onClick={() => verdict.mutate({ id: row.exception_id, approve: false })} aria-label={`Reject waiver ${row.exception_id}`}>
                    Reject
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {waivers.data && <Pager pager={pager} nextCursor={waivers.data.next_cursor} label="Waivers" />}
    </section>
  );
}
