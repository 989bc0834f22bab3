import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, authFetch, ApiError, data, type Run } from "../api/client";
import { hasRole, useMe } from "../auth";
import { Empty, ErrorMessage, Loading, Pager, StatusBadge, formatDate, shortId, useCursorPager } from "../components/common";

const PAGE = 20;
const LIVE = new Set(["pending", "running"]);
type RunStatus = "pending" | "running" | "completed" | "decided" | "failed";

export function Runs() {
  const me = useMe();
  const pager = useCursorPager();
  const [status, setStatus] = useState<RunStatus | "">("");
  // A run just requested shows up once the projector has it: poll until it does.
  const [awaiting, setAwaiting] = useState<string | null>(null);
  const runs = useQuery({
    queryKey: ["runs", status, pager.after],
    queryFn: async () =>
      data(await api.GET("/api/runs", { params: { query: { limit: PAGE, after: pager.after, status: status || undefined } } })),
    // Live progress: poll while any run on the page is still going.
    refetchInterval: (query) => {
      const items = query.state.data?.items ?? [];
      const live = items.some((run) => LIVE.has(run.status));
      const missing = awaiting !== null && !items.some((run) => run.run_id === awaiting);
      return live || missing ? 3000 : false;
    },
  });

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      {hasRole(me, "admin", "analyst", "senior_analyst", "sales_team") && <StartRun onStarted={setAwaiting} />}
      <div className="toolbar">
        <label>
          Status
          <select aria-label="Status"
            value={status}
            onChange={(e) => {
              setStatus(e.target.value as RunStatus | "");
              pager.reset();
            }}
          >
            <option value="">any</option>
            <option value="pending">pending</option>
            <option value="running">running</option>
            <option value="completed">completed</option>
            <option value="decided">decided</option>
            <option value="failed">failed</option>
          </select>
        </label>
        {runs.isFetching && <span role="status">Refreshing…</span>}
      </div>
      <ErrorMessage error={runs.error} />
      {runs.isPending ? (
        <Loading />
      ) : runs.data && runs.data.items.length === 0 ? (
        <Empty>No runs yet. Upload a tape above to start one.</Empty>
      ) : (
        runs.data && <RunTable runs={runs.data.items} />
      )}
      {runs.data && <Pager pager={pager} nextCursor={runs.data.next_cursor} label="Runs" />}
    </section>
  );
}

function RunTable({ runs }: { runs: Run[] }) {
  return (
    <table>
      <caption className="visually-hidden">Runs, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Status</th>
          <th scope="col">Phase</th>
          <th scope="col">Loans</th>
          <th scope="col">Exceptions</th>
          <th scope="col">Team</th>
          <th scope="col">Folder</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((run) => (
          <tr key={run.run_id}>
            <td>
              <Link to={`/runs/${run.run_id}`} aria-label={`Run ${run.run_id}`}>
                {shortId(run.run_id)}
              </Link>
            </td>
            <td>
              <StatusBadge status={run.status} />
            </td>
            <td>{run.last_phase ?? "—"}</td>
            <td className="num">{run.total_loans ?? "—"}</td>
            <td className="num">{run.exceptions_count ?? "—"}</td>
            <td>{run.sales_team_id ?? "—"}</td>
            <td>{run.folder ?? run.source.location ?? "—"}</td>
            <td>{formatDate(run.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Upload a tape into a folder, then request a run over that folder. */
function StartRun({ onStarted }: { onStarted: (runId: string) => void }) {
  const client = useQueryClient();
  const me = useMe();
  const [file, setFile] = useState<File | null>(null);
  const [folder, setFolder] = useState(`tapes-${today()}`);
  const [pdate, setPdate] = useState(today());
  const [irr, setIrr] = useState("8.05");
  const [team, setTeam] = useState(me.team_id ?? "");
  const [started, setStarted] = useState<Run | null>(null);
  const start = useMutation({
    mutationFn: async () => {
      if (file) {
        const form = new FormData();
        form.append("file", file);
        const answer = await authFetch(`/api/files/upload?path=${encodeURIComponent(folder)}`, { method: "POST", body: form });
        if (!answer.ok) throw new ApiError(answer.status, await answer.json().catch(() => null));
      }
      return data(
        await api.POST("/api/pipeline/run", {
          body: { folder, pdate, irr_target: irr, sales_team_id: team || null },
        }),
      );
    },
    onSuccess: (run) => {
      setStarted(run);
      onStarted(run.run_id);
      void client.invalidateQueries({ queryKey: ["runs"] });
    },
  });

  function submit(event: FormEvent) {
    event.preventDefault();
    start.mutate();
  }

  return (
    <form className="card start-run" onSubmit={submit} aria-label="Upload a tape and start a run">
      <h2>Upload a tape and start a run</h2>
      <div className="fields">
        <label>
          Tape (.csv or .xlsx)
          <input type="file" accept=".csv,.xlsx" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <label>
          Folder
          <input value={folder} onChange={(e) => setFolder(e.target.value)} required />
        </label>
        <label>
          Purchase date
          <input type="date" value={pdate} onChange={(e) => setPdate(e.target.value)} required />
        </label>
        <label>
          IRR target (%)
          <input value={irr} onChange={(e) => setIrr(e.target.value)} inputMode="decimal" required />
        </label>
        <label>
          Sales team
          <input value={team} onChange={(e) => setTeam(e.target.value)} placeholder="none" disabled={me.role === "sales_team"} />
        </label>
      </div>
      <button type="submit" disabled={start.isPending}>
        {start.isPending ? "Starting…" : file ? "Upload and start run" : "Start run"}
      </button>
      <ErrorMessage error={start.error} />
      {started && (
        <p role="status">
          Run <Link to={`/runs/${started.run_id}`}>{shortId(started.run_id)}</Link> requested ({started.status}).
        </p>
      )}
    </form>
  );
}
