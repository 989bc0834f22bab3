import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, data } from "../api/client";
import { useMe } from "../auth";
import { Empty, ErrorMessage, Loading, StatusBadge, formatDate } from "../components/common";
import { NOTES_REQUIRED, actionLabel, actionsFor, type Action, type Status } from "./lifecycle";

export function ExceptionDetail() {
  const { exceptionId = "" } = useParams();
  const me = useMe();
  const client = useQueryClient();
  const detail = useQuery({
    queryKey: ["exception", exceptionId],
    queryFn: async () => data(await api.GET("/api/exceptions/{exception_id}", { params: { path: { exception_id: exceptionId } } })),
  });
  const [notes, setNotes] = useState("");
  const [assignee, setAssignee] = useState("");
  const act = useMutation({
    mutationFn: async (action: Action) =>
      data(
        await api.POST("/api/exceptions/{exception_id}/{action}", {
          params: { path: { exception_id: exceptionId, action } },
          body: { notes: notes || null, assignee: action === "assign" ? assignee || me.id : null },
        }),
      ),
    onSuccess: (updated) => {
      client.setQueryData(["exception", exceptionId], updated);
      void client.invalidateQueries({ queryKey: ["exceptions"] });
      setNotes("");
    },
  });

  if (detail.isPending) return <Loading />;
  if (detail.error || !detail.data) return <ErrorMessage error={detail.error} />;
  const e = detail.data;
  const actions = actionsFor(me.role, e.status as Status);

  return (
    <section aria-labelledby="exception-title">
      <p>
        <Link to="/exceptions">← All exceptions</Link>
      </p>
      <h1 id="exception-title">
        Exception {e.exception_type} <StatusBadge status={e.status} />
      </h1>
      <dl className="facts">
        <dt>Message</dt>
        <dd>{e.message}</dd>
        <dt>Severity</dt>
        <dd>{e.severity}</dd>
        <dt>Category</dt>
        <dd>{e.category}</dd>
        <dt>Rejection criteria</dt>
        <dd>{e.rejection_criteria || "—"}</dd>
        <dt>Loan</dt>
        <dd>
          <Link to={`/runs/${e.run_id}/loans/${e.loan_id}`}>{e.seller_loan_number ?? e.loan_id}</Link> ({e.source_file} row {e.row})
        </dd>
        <dt>Run</dt>
        <dd>
          <Link to={`/runs/${e.run_id}`}>{e.run_id}</Link>
        </dd>
        <dt>Assignee</dt>
        <dd>{e.assignee ?? "—"}</dd>
        <dt>Waiver requested by</dt>
        <dd>{e.waiver_requested_by ?? "—"}</dd>
        <dt>Created</dt>
        <dd>{formatDate(e.created_at)}</dd>
      </dl>
      {actions.length > 0 && (
        <form className="card" aria-label="Act on this exception" onSubmit={(event) => event.preventDefault()}>
          <h2>Actions</h2>
          <label>
            Notes
            <textarea value={notes} onChange={(event) => setNotes(event.target.value)} rows={2} />
          </label>
          {actions.includes("assign") && (
            <label>
              Assignee id (for assign)
              <input value={assignee} onChange={(event) => setAssignee(event.target.value)} placeholder="me" />
            </label>
          )}
          <p className="hint">Notes are required to {NOTES_REQUIRED.filter((a) => actions.includes(a)).join(", ") || "—"}.</p>
          <div className="toolbar">
            {actions.map((action) => (
              <button key={action} type="button" disabled={act.isPending} onClick={() => act.mutate(action)}>
                {actionLabel(action)}
              </button>
            ))}
          </div>
          <ErrorMessage error={act.error} />
        </form>
      )}
      <h2>History</h2>
      {e.history.length === 0 ? (
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
            {e.history.map((entry) => (
              <tr key={entry.event_id}>
                <td>{formatDate(entry.occurred_at)}</td>
                <td>{entry.action}</td>
                <td>
                  {entry.actor_id.slice(0, 8)} ({entry.actor_role})
                </td>
                <td>
                  {entry.from_status} → {entry.to_status}
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
