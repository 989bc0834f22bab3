import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, data, download } from "../api/client";
import { useMe } from "../auth";
import { Empty, ErrorMessage, Loading, Pager, StatusBadge, shortId, useCursorPager } from "../components/common";
import { actionLabel, actionsFor, type Action, type Status } from "./lifecycle";

type Severity = "hard" | "soft";
const STATUSES: Status[] = ["new", "acknowledged", "in_progress", "waiver_pending", "resolved", "waived", "reopened"];
const PAGE = 25;

export function Exceptions() {
  const me = useMe();
  const client = useQueryClient();
  const [params, setParams] = useSearchParams();
  const pager = useCursorPager();
  const filter = {
    run_id: params.get("run_id") || undefined,
    status: (params.get("status") as Status) || undefined,
    severity: (params.get("severity") as Severity) || undefined,
    exception_type: params.get("exception_type") || undefined,
  };
  const exceptions = useQuery({
    queryKey: ["exceptions", filter, pager.after],
    queryFn: async () => data(await api.GET("/api/exceptions", { params: { query: { ...filter, limit: PAGE, after: pager.after } } })),
  });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notes, setNotes] = useState("");
  const [assignee, setAssignee] = useState("");
  const bulk = useMutation({
    mutationFn: async (action: Action) =>
      data(
        await api.POST("/api/exceptions/bulk/{action}", {
          params: { path: { action } },
          body: { exception_ids: [...selected], notes: notes || null, assignee: action === "assign" ? assignee || me.id : null },
        }),
      ),
    onSuccess: () => {
      setSelected(new Set());
      void client.invalidateQueries({ queryKey: ["exceptions"] });
    },
  });
  const [exportError, setExportError] = useState<unknown>(null);

  function setFilter(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next);
    pager.reset();
    setSelected(new Set());
  }

  function toggle(id: string) {
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  function exportCsv() {
    setExportError(null);
    const query = new URLSearchParams(Object.entries(filter).filter((pair): pair is [string, string] => Boolean(pair[1])));
    download(`/api/exceptions/export?${query}`, "exceptions.csv").catch(setExportError);
  }

  const items = exceptions.data?.items ?? [];
  const allSelected = items.length > 0 && items.every((row) => selected.has(row.exception_id));
  const actions = actionsFor(me.role);
  const canAct = actions.length > 0;

  return (
    <section aria-labelledby="exceptions-title">
      <h1 id="exceptions-title">Exceptions</h1>
      <form className="toolbar filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Run id
          <input value={filter.run_id ?? ""} onChange={(e) => setFilter("run_id", e.target.value.trim())} placeholder="any" />
        </label>
        <label>
          Status
          <select aria-label="Status" value={filter.status ?? ""} onChange={(e) => setFilter("status", e.target.value)}>
            <option value="">any</option>
            {STATUSES.map((status) => (
              <option key={status} value={status}>
                {status.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Severity
          <select aria-label="Severity" value={filter.severity ?? ""} onChange={(e) => setFilter("severity", e.target.value)}>
            <option value="">any</option>
            <option value="hard">hard</option>
            <option value="soft">soft</option>
          </select>
        </label>
        <label>
          Type
          <input value={filter.exception_type ?? ""} onChange={(e) => setFilter("exception_type", e.target.value)} placeholder="any" />
        </label>
        <button type="button" onClick={exportCsv}>
          Export CSV
        </button>
      </form>
      <ErrorMessage error={exportError} />
      {canAct && (
        <div className="toolbar bulk" role="group" aria-label="Bulk actions">
          <span>{selected.size} selected</span>
          <label>
            Notes
            <input value={notes} onChange={(e) => setNotes(e.target.value)} />
          </label>
          <label>
            Assignee id
            <input value={assignee} onChange={(e) => setAssignee(e.target.value)} placeholder="me" />
          </label>
          {actions.map((action) => (
            <button key={action} type="button" disabled={selected.size === 0 || bulk.isPending} onClick={() => bulk.mutate(action)}>
              {actionLabel(action)}
            </button>
          ))}
        </div>
      )}
      <ErrorMessage error={bulk.error} />
      {bulk.data && (
        <p role="status" className="notice">
          {bulk.data.action}: {bulk.data.applied} applied, {bulk.data.pending} pending, {bulk.data.skipped.length} skipped of{" "}
          {bulk.data.requested}
        </p>
      )}
      <ErrorMessage error={exceptions.error} />
      {exceptions.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No exceptions match these filters.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">
                {canAct && (
                  <input
                    type="checkbox"
                    aria-label="Select all on this page"
                    checked={allSelected}
                    onChange={() => setSelected(allSelected ? new Set() : new Set(items.map((row) => row.exception_id)))}
                  />
                )}
              </th>
              <th scope="col">Exception</th>
              <th scope="col">Status</th>
              <th scope="col">Severity</th>
              <th scope="col">Type</th>
              <th scope="col">Loan</th>
              <th scope="col">Message</th>
              <th scope="col">SLA age</th>
            </tr>
          </thead>
          <tbody>
            {items.map((row) => (
              <tr key={row.exception_id}>
                <td>
                  {canAct && (
                    <input
                      type="checkbox"
                      aria-label={`Select exception ${row.exception_id}`}
                      checked={selected.has(row.exception_id)}
                      onChange={() => toggle(row.exception_id)}
                    />
                  )}
                </td>
                <td>
                  <Link to={`/exceptions/${row.exception_id}`}>{shortId(row.exception_id)}</Link>
                </td>
                <td>
                  <StatusBadge status={row.status} />
                </td>
                <td>{row.severity}</td>
                <td>{row.exception_type}</td>
                <td>
                  <Link to={`/runs/${row.run_id}/loans/${row.loan_id}`}>{row.seller_loan_number ?? `row ${row.row}`}</Link>
                </td>
                <td>{row.message}</td>
                <td className="num">{row.sla_age_seconds != null ? `${Math.floor(row.sla_age_seconds / 3600)}h` : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {exceptions.data && <Pager pager={pager} nextCursor={exceptions.data.next_cursor} label="Exceptions" />}
    </section>
  );
}
