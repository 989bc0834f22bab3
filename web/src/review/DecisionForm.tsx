import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, data } from "../api/client";
import { ErrorMessage } from "../components/common";
import { CONDITION_TYPES, MAX_CONDITIONS, OUTCOMES, isOverride, trimmedLength, type CaseDetail, type ConditionType, type Outcome } from "./review";

interface ConditionDraft {
  key: number;
  condition_type: ConditionType;
  description: string;
}

/** The assignee's decision on a case in progress: approve with terms, approve with conditions
 * (any number, each of a type), or decline with reasoning. When the outcome goes against the
 * model's leaning the form says so and counts the justification as the API does (trimmed
 * characters, at least `justification_min_length`); the API's own refusal is shown as given. */
export function DecisionForm({ detail }: { detail: CaseDetail }) {
  const client = useQueryClient();
  const [outcome, setOutcome] = useState<Outcome>(detail.model_leaning === "decline" ? "decline" : "approve");
  const [terms, setTerms] = useState("");
  const [reasoning, setReasoning] = useState("");
  const [justification, setJustification] = useState("");
  const [conditions, setConditions] = useState<ConditionDraft[]>([{ key: 0, condition_type: "documentation", description: "" }]);
  const [nextKey, setNextKey] = useState(1);
  const override = isOverride(outcome, detail.model_leaning);
  const needed = detail.justification_min_length;
  const written = trimmedLength(justification);

  // A 202 answer: the decision is published but not folded yet, so the case still shows in
  // progress. The form says so and waits (a second submit would publish a second decision) until
  // the case shows it (the form then goes) or a look again says otherwise.
  const [sent, setSent] = useState(false);
  const decide = useMutation({
    mutationFn: async () => {
      const answer = await api.POST("/api/review/cases/{case_id}/decision", {
          params: { path: { case_id: detail.case_id } },
          body: {
            outcome,
            terms: outcome === "approve" ? terms : null,
            reasoning: outcome === "decline" ? reasoning : null,
            conditions:
              outcome === "approve_with_conditions"
                ? conditions.map(({ condition_type, description }) => ({ condition_type, description }))
                : [],
            justification: justification.trim() ? justification : null,
          },
      });
      return { updated: data(answer), folded: answer.response.status !== 202 };
    },
    onSuccess: ({ updated, folded }) => {
      client.setQueryData(["review-case", detail.case_id], updated);
      if (!folded) {
        setSent(true);
        setTimeout(() => {
          void client.invalidateQueries({ queryKey: ["review-case", detail.case_id] }).then(() => setSent(false));
        }, 3000);
      }
      void client.invalidateQueries({ queryKey: ["review-queue"] });
      void client.invalidateQueries({ queryKey: ["review-summary"] });
      void client.invalidateQueries({ queryKey: ["pending-overrides"] });
    },
  });

  function submit(event: FormEvent) {
    event.preventDefault();
    decide.mutate();
  }

  function change(key: number, patch: Partial<ConditionDraft>) {
    setConditions((all) => all.map((item) => (item.key === key ? { ...item, ...patch } : item)));
  }

  return (
    <form className="card decision" aria-labelledby="decision-title" onSubmit={submit}>
      <h2 id="decision-title" tabIndex={-1}>
        Decision
      </h2>
      <fieldset>
        <legend>Outcome</legend>
        {OUTCOMES.map(([value, label]) => (
          <label key={value} className="choice">
            <input type="radio" name="outcome" value={value} checked={outcome === value} onChange={() => setOutcome(value)} />
            {label}
          </label>
        ))}
      </fieldset>
      <p className="hint">
        The model leans <strong>{detail.model_leaning}</strong> (score {detail.score}).
      </p>
      {outcome === "approve" && (
        <label className="wide">
          Terms
          <textarea value={terms} onChange={(e) => setTerms(e.target.value)} rows={2} maxLength={4000} />
        </label>
      )}
      {outcome === "approve_with_conditions" && (
        <fieldset>
          <legend>Conditions</legend>
          <ol className="conditions">
            {conditions.map((item, index) => (
              <li key={item.key}>
                <label>
                  Condition {index + 1} type
                  <select value={item.condition_type} onChange={(e) => change(item.key, { condition_type: e.target.value as ConditionType })}>
                    {CONDITION_TYPES.map((type) => (
                      <option key={type} value={type}>
                        {type.replace(/_/g, " ")}
                      </option>
                    ))}
                  </select>
                </label>
                <label className="grow">
                  Condition {index + 1} description
                  <input value={item.description} maxLength={2000} onChange={(e) => change(item.key, { description: e.target.value })} />
                </label>
                <button
                  type="button"
                  className="secondary"
                  disabled={conditions.length === 1}
                  onClick={() => setConditions((all) => all.filter((other) => other.key !== item.key))}
                >
                  Remove condition {index + 1}
                </button>
              </li>
            ))}
          </ol>
          <button
            type="button"
            className="secondary"
            disabled={conditions.length >= MAX_CONDITIONS}
            onClick={() => {
              setConditions((all) => [...all, { key: nextKey, condition_type: "documentation", description: "" }]);
              setNextKey((key) => key + 1);
            }}
          >
            Add a condition
          </button>
        </fieldset>
      )}
      {outcome === "decline" && (
        <label className="wide">
          Reasoning
          <textarea value={reasoning} onChange={(e) => setReasoning(e.target.value)} rows={2} maxLength={4000} />
        </label>
      )}
      <label className="wide">
        Override justification{override ? " (required)" : " (only for a decision against the model)"}
        <textarea
          value={justification}
          onChange={(e) => setJustification(e.target.value)}
          rows={3}
          maxLength={4000}
          aria-describedby="justification-help"
          aria-invalid={override && written < needed}
        />
      </label>
      <p id="justification-help" className={override ? (written < needed ? "hint override-warn" : "hint override-ok") : "hint"} aria-live="polite">
        {override
          ? `This decision goes against the model: it is an override that needs a justification of at least ${needed} characters (${written} written${written < needed ? `, ${needed - written} to go` : ""}) and a senior analyst's approval.`
          : "This decision follows the model's leaning: no justification or second approval needed."}
      </p>
      <div className="toolbar">
        <button type="submit" disabled={decide.isPending || sent}>
          {decide.isPending ? "Recording…" : override ? "Submit override for approval" : "Record decision"}
        </button>
      </div>
      {sent && (
        <p className="notice" role="status">
          Your decision was sent; it shows here once it is recorded.
        </p>
      )}
      <ErrorMessage error={decide.error} />
    </form>
  );
}
