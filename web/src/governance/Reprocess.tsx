import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
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

/** The request body of a draft: only what the person set, so the rest is the parent's (the rule
 * set is always sent: left unset, the API takes the current one, not the parent's). */
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

/** A rule set's option: its version, and whether it is the parent's and the current one. */
export function ruleSetLabel(version: string, parents: boolean, current: boolean): string {
  const notes = [parents && "the parent's", current && "current"].filter(Boolean);
  return notes.length ? `${version} (${notes.join(", ")})` : version;
}

/** A toggle that shows the reprocess form below it (`aria-expanded`, `aria-controls`): opening it
 * puts the focus on the form's first field, cancelling puts it back on the toggle. While
 * `waiting` is set, the form is replaced by that message. */
export function ReprocessDisclosure({
  runId,
  loanId,
  label,
  parentRuleSet,
  waiting,
}: {
  runId: string;
  loanId?: string;
  label: string;
  parentRuleSet?: string | null;
  waiting?: ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const toggle = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  return (
    <>
      <button ref={toggle} type="button" aria-expanded={open} aria-controls={open ? panelId : undefined} onClick={() => setOpen(!open)}>
        {label}
      </button>
      {open &&
        (waiting ? (
          <p role="status" id={panelId}>
            {waiting}
          </p>
        ) : (
          <ReprocessForm
            id={panelId}
            runId={runId}
            loanId={loanId}
            parentRuleSet={parentRuleSet}
            focusFirst
            onCancel={() => {
              setOpen(false);
              toggle.current?.focus();
            }}
          />
        ))}
    </>
  );
}

/** Reprocess a run into a child run (SPEC §7), then open the child (where its diff appears).
 * With `loanId`, the form reprocesses that loan alone by default, corrections applied. The rule
 * set starts as the parent's: `parentRuleSet` when given, else the one of the parent's DQ. */
export function ReprocessForm({
  id: formId,
  runId,
  loanId,
  parentRuleSet,
  focusFirst = false,
  onCancel,
}: {
  id?: string;
  runId: string;
  loanId?: string;
  parentRuleSet?: string | null;
  focusFirst?: boolean;
  onCancel?: () => void;
}) {
  const navigate = useNavigate();
  const id = useId();
  const [draft, setDraft] = useState<Omit<ReprocessDraft, "ruleSetVersion">>({
    irrTarget: "",
    pdate: "",
    applyCorrections: loanId !== undefined,
    loanIds: loanId ?? "",
  });
  // null until the person picks one: then the parent's (once known) is the choice.
  const [chosenRuleSet, setChosenRuleSet] = useState<string | null>(null);
  const [onlyThisLoan, setOnlyThisLoan] = useState(loanId !== undefined);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (focusFirst) first.current?.focus();
  }, [focusFirst]);
  const ruleSets = useQuery({
    queryKey: ["rule-sets"],
    queryFn: async () => data(await api.GET("/api/rule-sets")),
    staleTime: 300_000,
  });
  const parentDq = useQuery({
    queryKey: ["dq-summary", runId],
    queryFn: async () => data(await api.GET("/api/dq/summary", { params: { query: { run_id: runId } } })),
    enabled: parentRuleSet === undefined,
  });
  const parentVersion = parentRuleSet !== undefined ? parentRuleSet : (parentDq.data?.rule_set_version ?? null);
  const ruleSetVersion = chosenRuleSet ?? parentVersion ?? "";
  const versions = (ruleSets.data ?? []).map((ruleSet) => ruleSet.version);
  const reprocess = useMutation({
    mutationFn: async () => {
      const body = reprocessBody({
        ...draft,
        ruleSetVersion,
        loanIds: loanId === undefined ? draft.loanIds : onlyThisLoan ? loanId : "",
      });
      return data(await api.POST("/api/runs/{run_id}/reprocess", { params: { path: { run_id: runId } }, body }));
    },
    onSuccess: (child) => navigate(`/runs/${child.run_id}`),
  });
  const set = (patch: Partial<Omit<ReprocessDraft, "ruleSetVersion">>) => setDraft((current) => ({ ...current, ...patch }));
  return (
    <form
      id={formId}
      className="card reprocess"
      aria-labelledby={`${id}-title`}
      onSubmit={(event) => {
        event.preventDefault();
        reprocess.mutate();
      }}
    >
      <h3 id={`${id}-title`}>{loanId ? "Reprocess this loan" : "Reprocess this run"}</h3>
      <p className="hint">A child run over the archived tape; an empty IRR target or date keeps the parent's.</p>
      <div className="fields">
        <label>
          IRR target
          <input ref={first} value={draft.irrTarget} onChange={(e) => set({ irrTarget: e.target.value })} inputMode="decimal" placeholder="e.g. 8.05" />
        </label>
        <label>
          Purchase date
          <input type="date" value={draft.pdate} onChange={(e) => set({ pdate: e.target.value })} />
        </label>
        <label>
          Rule set
          <select aria-label="Rule set" value={ruleSetVersion} onChange={(e) => setChosenRuleSet(e.target.value)}>
            <option value="">whichever is current when the run starts</option>
            {parentVersion && !versions.includes(parentVersion) && <option value={parentVersion}>{parentVersion} (the parent's)</option>}
            {(ruleSets.data ?? []).map((ruleSet) => (
              <option key={ruleSet.version} value={ruleSet.version}>
                {ruleSetLabel(ruleSet.version, ruleSet.version === parentVersion, ruleSet.current)}
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
      <ErrorMessage error={parentDq.error} />
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
