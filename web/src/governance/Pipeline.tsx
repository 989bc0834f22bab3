import "./governance.css";
import { useQuery } from "@tanstack/react-query";
import { api, data, type Schemas } from "../api/client";
import { ErrorMessage, Loading } from "../components/common";

type Stage = Schemas["StageResponse"];

const LIVE = new Set(["pending", "running"]);
const STUCK_SHOWN = 20;
/** Every 4 s while the run is live: with the run detail's own polls, well inside the API's
 * per-user rate limit. */
export const STAGES_POLL_MS = 4000;

/** A run is settled once its status is final and every loan it reported is projected: until then
 * the read models (DQ, diff, loans) show a half-projected run. */
export function runSettled(stages: { status: string; stages: Stage[] } | undefined): boolean {
  if (!stages || LIVE.has(stages.status)) return false;
  const projected = stages.stages.find((stage) => stage.stage === "projected");
  return !projected || !projected.available || projected.stuck === 0;
}

/** How a stage is doing: where it failed, where records wait, what is done. Records held before
 * the projection only wait (the projector stores a finished run's loans a moment later). */
export function stageState(stage: Stage, runStatus: string): "failed" | "waiting" | "done" | "untracked" | "idle" {
  if (!stage.available) return "untracked";
  if (stage.failed > 0) return "failed";
  if (stage.stuck > 0) return LIVE.has(runStatus) || stage.stage === "projected" ? "waiting" : "failed";
  if (stage.records_out != null && stage.records_out > 0) return "done";
  return "idle";
}

const STATE_LABEL = {
  failed: "failures",
  waiting: "records waiting",
  done: "passed",
  untracked: "not tracked",
  idle: "nothing yet",
};

/** A run's stage tracking, read again every `pollMs` until the run has settled (`runSettled`).
 * The run's status is part of the key, so the stages are read at once when the run stops. */
export function useRunStages(runId: string, runStatus: string, pollMs = STAGES_POLL_MS) {
  return useQuery({
    queryKey: ["stages", runId, runStatus],
    queryFn: async () => data(await api.GET("/api/runs/{run_id}/stages", { params: { path: { run_id: runId } } })),
    refetchInterval: (query) => (query.state.error || runSettled(query.state.data) ? false : pollMs),
    placeholderData: (previous) => previous,
  });
}

/** Whether a run has settled (see `runSettled`); shares the pipeline's reads of the stages. When
 * the stages cannot be read (the pipeline shows why), the panels show what the API has. */
export function useRunSettled(runId: string, runStatus: string, pollMs = STAGES_POLL_MS): boolean {
  const stages = useRunStages(runId, runStatus, pollMs);
  if (stages.error) return true;
  return !stages.isPlaceholderData && runSettled(stages.data);
}

/** A run's stage tracking (`GET /runs/{id}/stages`) drawn as a pipeline, polled until the run has
 * settled. */
export function RunPipeline({ runId, runStatus, pollMs = STAGES_POLL_MS }: { runId: string; runStatus: string; pollMs?: number }) {
  const stages = useRunStages(runId, runStatus, pollMs);
  const live = !runSettled(stages.data);
  return (
    <section aria-labelledby="pipeline-title">
      <h2 id="pipeline-title">Pipeline</h2>
      <ErrorMessage error={stages.error} />
      {stages.isPending && <Loading />}
      {stages.data && (
        <>
          <ol className="pipeline" aria-label="Pipeline stages">
            {stages.data.stages.map((stage) => {
              const state = stageState(stage, stages.data.status);
              return (
                <li key={stage.stage} className={`stage stage-${state}`}>
                  <strong>{stage.stage}</strong>
                  <span className="stage-state">{STATE_LABEL[state]}</span>
                  {stage.available ? (
                    <dl>
                      <dt>in</dt>
                      <dd>{stage.records_in ?? "—"}</dd>
                      <dt>out</dt>
                      <dd>{stage.records_out ?? "—"}</dd>
                      <dt>failed</dt>
                      <dd>{stage.failed}</dd>
                      <dt>stuck</dt>
                      <dd>{stage.stuck}</dd>
                    </dl>
                  ) : null}
                </li>
              );
            })}
          </ol>
          <StuckLoans stages={stages.data.stages} />
          {live && (
            <p className="hint">
              Updating every {pollMs / 1000} s {LIVE.has(stages.data.status) ? "while the run goes" : "until every loan is projected"}.
            </p>
          )}
        </>
      )}
    </section>
  );
}

/** The ids of loans held up before a stage (not projected yet, so no loan view to link to). */
function StuckLoans({ stages }: { stages: Stage[] }) {
  const held = stages.filter((stage) => stage.stuck > 0 && stage.stuck_loan_ids.length > 0);
  if (held.length === 0) return null;
  return (
    <>
      {held.map((stage) => (
        <details key={stage.stage} className="stuck">
          <summary>
            {stage.stuck} loans held before {stage.stage}
          </summary>
          <ul>
            {stage.stuck_loan_ids.slice(0, STUCK_SHOWN).map((loanId) => (
              <li key={loanId}>
                <code>{loanId}</code>
              </li>
            ))}
          </ul>
          {stage.stuck > Math.min(stage.stuck_loan_ids.length, STUCK_SHOWN) && (
            <p className="hint">and {stage.stuck - Math.min(stage.stuck_loan_ids.length, STUCK_SHOWN)} more</p>
          )}
        </details>
      ))}
    </>
  );
}
