import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ApiError, api, data, download } from "../api/client";
import { hasRole, useMe } from "../auth";
import { Empty, ErrorMessage, Loading, Pager, StatusBadge, formatDate, useCursorPager } from "../components/common";
import { RunPipeline } from "../governance/Pipeline";
import { ReprocessControl, RunGovernance } from "../governance/RunGovernance";

const LIVE = new Set(["pending", "running"]);
/** A run with its four reports: completed, or decided (its decision tape written too). */
const DONE = new Set(["completed", "decided"]);
/** A run just requested (a reprocess's child) is listed once the projector has it: a 404 is read
 * again every second for this long before it is shown. */
export const AWAIT_NEW_RUN_MS = 30_000;

function notFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

export function RunDetail({ awaitMs = AWAIT_NEW_RUN_MS }: { awaitMs?: number }) {
  const { runId = "" } = useParams();
  const me = useMe();
  const client = useQueryClient();
  const path = { run_id: runId };
  const [gaveUp, setGaveUp] = useState(false);
  useEffect(() => {
    setGaveUp(false);
    const timer = setTimeout(() => setGaveUp(true), awaitMs);
    return () => clearTimeout(timer);
  }, [runId, awaitMs]);
  const run = useQuery({
    queryKey: ["run", runId],
    queryFn: async () => data(await api.GET("/api/runs/{run_id}", { params: { path } })),
    refetchInterval: (query) =>
      query.state.data && LIVE.has(query.state.data.status) ? 4000 : notFound(query.state.error) && !gaveUp ? 1000 : false,
  });
  const awaiting = notFound(run.error) && !gaveUp;
  const live = run.data ? LIVE.has(run.data.status) : true;
  const done = run.data !== undefined && DONE.has(run.data.status);
  const progress = useQuery({
    queryKey: ["progress", runId],
    queryFn: async () => data(await api.GET("/api/runs/{run_id}/progress", { params: { path } })),
    // Live progress every 2 s, the run every 4 s (together well inside the API's per-user rate
    // limit), and the run at once when the progress says its status changed.
    refetchInterval: live ? 2000 : false,
    enabled: run.data !== undefined,
  });
  const progressStatus = progress.data?.status;
  useEffect(() => {
    if (progressStatus && run.data && progressStatus !== run.data.status) {
      void client.invalidateQueries({ queryKey: ["run", runId] });
    }
  }, [progressStatus, run.data, client, runId]);
  const summary = useQuery({
    queryKey: ["summary", runId],
    queryFn: async () => data(await api.GET("/api/summary/{run_id}", { params: { path } })),
    enabled: done,
  });
  const outputs = useQuery({
    queryKey: ["outputs", runId],
    queryFn: async () => data(await api.GET("/api/runs/{run_id}/notebook-outputs", { params: { path } })),
    enabled: done,
  });
  const archive = useQuery({
    queryKey: ["archive", runId],
    queryFn: async () => data(await api.GET("/api/runs/{run_id}/archive", { params: { path } })),
    enabled: done,
  });
  const refresh = () => client.invalidateQueries({ queryKey: ["run", runId] });
  const retry = useMutation({
    mutationFn: async () => data(await api.POST("/api/runs/{run_id}/retry", { params: { path } })),
    onSuccess: refresh,
  });
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const fetchFile = (url: string, name: string) => {
    setDownloadError(null);
    download(url, name).catch(setDownloadError);
  };

  if (run.isPending) return <Loading />;
  if (awaiting && !run.data) return <Loading label="Waiting for the run to be recorded…" />;
  if (run.error || !run.data) return <ErrorMessage error={run.error} />;
  const r = run.data;
  const canAct = hasRole(me, "admin", "analyst", "senior_analyst");

  return (
    <section aria-labelledby="run-title">
      <p>
        <Link to="/runs">← All runs</Link>
      </p>
      <h1 id="run-title">
        Run {r.run_id} <StatusBadge status={r.status} />
      </h1>
      <dl className="facts">
        <dt>Folder</dt>
        <dd>{r.folder ?? r.source.location ?? "—"}</dd>
        <dt>Purchase date</dt>
        <dd>{r.pdate ?? "—"}</dd>
        <dt>IRR target</dt>
        <dd>{r.irr_target ?? "—"}</dd>
        <dt>Sales team</dt>
        <dd>{r.sales_team_id ?? "—"}</dd>
        <dt>Loans</dt>
        <dd>{r.total_loans ?? "—"}</dd>
        <dt>Total balance</dt>
        <dd>{r.total_balance ?? "—"}</dd>
        <dt>Exceptions</dt>
        <dd>{r.exceptions_count ?? "—"}</dd>
        <dt>Parent run</dt>
        <dd>{r.parent_run_id ? <Link to={`/runs/${r.parent_run_id}`}>{r.parent_run_id}</Link> : "—"}</dd>
        <dt>Attempt</dt>
        <dd>{r.attempt}</dd>
        <dt>Requested by</dt>
        <dd>{r.requested_by ?? "—"}</dd>
        <dt>Created</dt>
        <dd>{formatDate(r.created_at)}</dd>
        <dt>Completed</dt>
        <dd>{formatDate(r.completed_at)}</dd>
      </dl>
      {r.error && (
        <p role="alert" className="error">
          Run failed: {r.error}
        </p>
      )}
      {canAct && (
        <div className="toolbar">
          {r.status === "failed" && (
            <button type="button" onClick={() => retry.mutate()} disabled={retry.isPending}>
              Retry run
            </button>
          )}
          {!live && <ReprocessControl runId={r.run_id} />}
          <Link to={`/exceptions?run_id=${r.run_id}`}>Exceptions of this run</Link>
        </div>
      )}
      <ErrorMessage error={retry.error} />

      <h2>Progress</h2>
      <ErrorMessage error={progress.error} />
      {progress.data && (
        <>
          <p>
            <label>
              Overall {progress.data.overall_percent}%{" "}
              <progress max={100} value={Number(progress.data.overall_percent)} />
            </label>
            {progress.data.estimated_seconds_left != null && <> about {progress.data.estimated_seconds_left}s left</>}
          </p>
          <ol className="phases" aria-label="Phases">
            {progress.data.phases.map((phase) => (
              <li key={phase.phase} className={`phase phase-${phase.status}`}>
                <strong>{phase.phase}</strong> <StatusBadge status={phase.status} />
                <span>
                  {phase.processed}
                  {phase.total != null && ` / ${phase.total}`}
                </span>
                {phase.duration_seconds != null && <span>{phase.duration_seconds}s</span>}
              </li>
            ))}
          </ol>
        </>
      )}

      <RunPipeline runId={r.run_id} runStatus={r.status} />

      {done && (
        <>
          <RunGovernance run={r} />
          <h2>Summary</h2>
          <ErrorMessage error={summary.error} />
          {summary.data && (
            <dl className="facts">
              <dt>Eligible</dt>
              <dd>{summary.data.eligibility_checks.eligible}</dd>
              <dt>To purchase</dt>
              <dd>{summary.data.eligibility_checks.to_purchase}</dd>
              <dt>Projected</dt>
              <dd>{summary.data.eligibility_checks.projected}</dd>
              <dt>Rejected</dt>
              <dd>{summary.data.eligibility_checks.rejected}</dd>
              {Object.entries(summary.data.eligibility_checks.exceptions_by_severity).map(([severity, count]) => (
                <FactPair key={severity} term={`${severity} exceptions`} value={String(count)} />
              ))}
            </dl>
          )}

          <h2>Reports</h2>
          <ErrorMessage error={outputs.error ?? downloadError} />
          {outputs.data && outputs.data.length === 0 && <Empty>No reports.</Empty>}
          {outputs.data && outputs.data.length > 0 && (
            <table>
              <thead>
                <tr>
                  <th scope="col">Report</th>
                  <th scope="col">Rows</th>
                  <th scope="col">Size</th>
                  <th scope="col">Download</th>
                </tr>
              </thead>
              <tbody>
                {outputs.data.map((file) => (
                  <tr key={file.key}>
                    <td>{file.name}</td>
                    <td className="num">{file.rows}</td>
                    <td className="num">{file.size}</td>
                    <td>
                      <button
                        type="button"
                        onClick={() => fetchFile(`/api/runs/${r.run_id}/notebook-outputs/${encodeURIComponent(file.key)}/download`, file.name)}
                      >
                        Download {file.name}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}

          <h2>Archive</h2>
          <ErrorMessage error={archive.error} />
          {archive.data && (
            <>
              <button type="button" onClick={() => fetchFile(`/api/runs/${r.run_id}/archive/download`, `${r.run_id}.zip`)}>
                Download the whole archive
              </button>
              <ul>
                {[...archive.data.input, ...archive.data.output].map((entry) => (
                  <li key={entry.path}>
                    <button
                      type="button"
                      className="link"
                      onClick={() => fetchFile(`/api/runs/${r.run_id}/archive/download?path=${encodeURIComponent(entry.path)}`, entry.name)}
                    >
                      {entry.path}
                    </button>{" "}
                    ({entry.size} bytes)
                  </li>
                ))}
              </ul>
            </>
          )}
          <RunLoans runId={r.run_id} />
        </>
      )}
    </section>
  );
}

function FactPair({ term, value }: { term: string; value: string }) {
  return (
    <>
      <dt>{term}</dt>
      <dd>{value}</dd>
    </>
  );
}

type Disposition = "to_purchase" | "projected" | "rejected";

function RunLoans({ runId }: { runId: string }) {
  const pager = useCursorPager();
  const [disposition, setDisposition] = useState<Disposition | "">("");
  const loans = useQuery({
    queryKey: ["loans", runId, disposition, pager.after],
    queryFn: async () =>
      data(
        await api.GET("/api/loans", {
          params: { query: { run_id: runId, limit: 25, after: pager.after, disposition: disposition || undefined } },
        }),
      ),
  });
  return (
    <>
      <h2>Loans</h2>
      <label>
        Disposition
        <select aria-label="Disposition"
          value={disposition}
          onChange={(e) => {
            setDisposition(e.target.value as Disposition | "");
            pager.reset();
          }}
        >
          <option value="">any</option>
          <option value="to_purchase">to purchase</option>
          <option value="projected">projected</option>
          <option value="rejected">rejected</option>
        </select>
      </label>
      <ErrorMessage error={loans.error} />
      {loans.isPending && <Loading />}
      {loans.data && loans.data.items.length === 0 && <Empty>No loans match.</Empty>}
      {loans.data && loans.data.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Seller loan</th>
              <th scope="col">Row</th>
              <th scope="col">Amount</th>
              <th scope="col">Rate</th>
              <th scope="col">Disposition</th>
              <th scope="col">Exceptions</th>
              <th scope="col">Price</th>
            </tr>
          </thead>
          <tbody>
            {loans.data.items.map((loan) => (
              <tr key={loan.loan_id}>
                <td>
                  <Link to={`/runs/${runId}/loans/${loan.loan_id}`} state={{ loan }}>
                    {loan.seller_loan_number ?? loan.loan_id}
                  </Link>
                </td>
                <td className="num">{loan.row}</td>
                <td className="num">{loan.loan_amount ?? "—"}</td>
                <td className="num">{loan.note_rate ?? "—"}</td>
                <td>{loan.disposition}</td>
                <td className="num">{loan.exceptions_count}</td>
                <td className="num">{loan.final_price ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {loans.data && <Pager pager={pager} nextCursor={loans.data.next_cursor} label="Loans" />}
    </>
  );
}
