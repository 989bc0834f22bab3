import { useMutation, useQuery } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, data, type Schemas } from "../api/client";
import { ErrorMessage } from "../components/common";

type ReprocessBody = Schemas["ReprocessRequest"];

export interface ReprocessDraft {
  irrTarget: string;
  pdate: string;
  ruleSetVersion: string;
  applyCorrections: boolean;
  loanIds: string;
}

/** The request body of a draft: only what the person set, so the rest is the parent's. */
export function reprocessBody(draft: ReprocessDraft): ReprocessBody {
  const ids = draft.loanIds
    .split(/[\s,]+/)
    .map((id) => id.trim())
    .filter(Boolean);
  return {
    irr_target: draft.irrTarget.trim() || null,
    pdate: draft.pdate || null,
    rule_set_version: draft.ruleSetVersion || null,
    apply_corrections: draft.applyCorrections,
    loan_ids: ids.length ? [...new Set(ids)] : null,
  };
}

/** Reprocess a run into a child run (SPEC §7), then open the child (where its diff appears).
 * With `loanId`, the form reprocesses that loan alone by default, corrections applied. */
export function ReprocessForm({
  runId,
  loanId,
  onCancel,
}: {
  runId: string;
  loanId?: string;
  onCancel?: () => void;
}) {
  const navigate = useNavigate();
  const id = useId();
  const [draft, setDraft] = useState<ReprocessDraft>({
    irrTarget: "",
    pdate: "",
    ruleSetVersion: "",
    applyCorrections: loanId !== undefined,
    loanIds: loanId ?? "",
  });
  const [onlyThisLoan, setOnlyThisLoan] = useState(loanId !== undefined);
  const ruleSets = useQuery({
    queryKey: ["rule-sets"],
    queryFn: async () => data(await api.GET("/api/rule-sets")),
    staleTime: 300_000,
  });
  const reprocess = useMutation({
    mutationFn: async () => {
      const body = reprocessBody({ ...draft, loanIds: loanId === undefined ? draft.loanIds : onlyThisLoan ? loanId : "" });
      return data(await api.POST("/api/runs/{run_id}/reprocess", { params: { path: { run_id: runId } }, body }));
    },
    onSuccess: (child) => navigate(`/runs/${child.run_id}`),
  });
  const set = (patch: Partial<ReprocessDraft>) => setDraft((current) => ({ ...current, ...patch }));
  return (
    <form
      className="card reprocess"
      aria-labelledby={`${id}-title`}
      onSubmit={(event) => {
        event.preventDefault();
        reprocess.mutate();
      }}
    >
      <h3 id={`${id}-title`}>{loanId ? "Reprocess this loan" : "Reprocess this run"}</h3>
      <p className="hint">A child run over the archived tape; empty fields keep the parent's values.</p>
      <div className="fields">
        <label>
          IRR target
          <input value={draft.irrTarget} onChange={(e) => set({ irrTarget: e.target.value })} inputMode="decimal" placeholder="e.g. 8.05" />
        </label>
        <label>
          Purchase date
          <input type="date" value={draft.pdate} onChange={(e) => set({ pdate: e.target.value })} />
        </label>
        <label>
          Rule set
          <select aria-label="Rule set" value={draft.ruleSetVersion} onChange={(e) => set({ ruleSetVersion: e.target.value })}>
            <option value="">the parent's</option>
            {(ruleSets.data ?? []).map((ruleSet) => (
              <option key={ruleSet.version} value={ruleSet.version}>
                {ruleSet.version}
                {ruleSet.current ? " (current)" : ""}
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={draft.applyCorrections} onChange={(e) => set({ applyCorrections: e.target.checked })} />
          Apply corrections
        </label>
        {loanId !== undefined ? (
          <label className="check">
            <input type="checkbox" checked={onlyThisLoan} onChange={(e) => setOnlyThisLoan(e.target.checked)} />
            Only this loan
          </label>
        ) : (
          <label>
            Only these loan ids (optional)
            <textarea rows={2} cols={40} value={draft.loanIds} onChange={(e) => set({ loanIds: e.target.value })} />
          </label>
        )}
      </div>
      <ErrorMessage error={ruleSets.error} />
      <ErrorMessage error={reprocess.error} />
      <div className="toolbar">
        <button type="submit" disabled={reprocess.isPending}>
          {reprocess.isPending ? "Starting…" : "Start reprocess"}
        </button>
        {onCancel && (
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
