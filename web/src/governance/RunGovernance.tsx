import "./governance.css";
import { useState } from "react";
import type { Run } from "../api/client";
import { hasRole, useMe } from "../auth";
import { RunDataQuality } from "./DataQuality";
import { RunReconciliation } from "./Reconciliation";
import { ReprocessForm } from "./Reprocess";
import { RunDiff } from "./RunDiff";

/** A completed run's governance panels in run detail: the diff against its parent (for a
 * reprocess), data quality and reconciliation. */
export function RunGovernance({ run }: { run: Run }) {
  const me = useMe();
  const canAct = hasRole(me, "admin", "analyst", "senior_analyst");
  return (
    <>
      {run.parent_run_id && <RunDiff runId={run.run_id} parentRunId={run.parent_run_id} />}
      <RunDataQuality runId={run.run_id} />
      <RunReconciliation runId={run.run_id} canAct={canAct} />
    </>
  );
}

/** "Reprocess…": opens the reprocess form (new IRR target, date, rule set, corrections, loans). */
export function ReprocessControl({ runId }: { runId: string }) {
  const [open, setOpen] = useState(false);
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)} aria-expanded={false}>
        Reprocess run…
      </button>
    );
  return <ReprocessForm runId={runId} onCancel={() => setOpen(false)} />;
}
