import "./governance.css";
import type { Run } from "../api/client";
import { hasRole, useMe } from "../auth";
import { RunDataQuality } from "./DataQuality";
import { useRunSettled } from "./Pipeline";
import { RunReconciliation } from "./Reconciliation";
import { ReprocessDisclosure } from "./Reprocess";
import { RunDiff } from "./RunDiff";

/** A completed run's governance panels in run detail: the diff against its parent (for a
 * reprocess), data quality and reconciliation. */
export function RunGovernance({ run, pollMs }: { run: Run; pollMs?: number }) {
  const me = useMe();
  const canAct = hasRole(me, "admin", "analyst", "senior_analyst");
  // The diff and the DQ are read once every loan of the run is projected, not half-way.
  const settled = useRunSettled(run.run_id, run.status, pollMs);
  return (
    <>
      {run.parent_run_id && <RunDiff runId={run.run_id} parentRunId={run.parent_run_id} settled={settled} />}
      <RunDataQuality runId={run.run_id} settled={settled} />
      <RunReconciliation runId={run.run_id} canAct={canAct} />
    </>
  );
}

/** "Reprocess run…": a disclosure of the reprocess form (new IRR target, date, rule set,
 * corrections, loans). */
export function ReprocessControl({ runId }: { runId: string }) {
  return <ReprocessDisclosure runId={runId} label="Reprocess run…" />;
}
