import { useState, type FormEvent } from "react";
import { methodLabel } from "../../../api/methods";
import { schemaHelp } from "../../../api/schemaDefaults";
import { useHarmColumns, useLaunchVerify, VERIFY_DEFAULTS, type Job, type VerifyCreate } from "../api/verify";
import { count } from "../../../components/ui/count";
import { Alert } from "../../../components/ui/Alert";
import { NumberField } from "../../../components/ui/NumberField";

/** A dataset the verification can be evaluated on instead of the audit's validation split. */
export interface TestDataset {
  id: number;
  name: string;
  n_pairs: number;
}

interface Props {
  datasetId: number;
  /** The succeeded audit whose recipe is retrained and whose scores rank the pairs. */
  audit: Job;
  /** How many pairs of the dataset are flagged now (the "my current flags" rule). */
  flaggedCount?: number;
  /** The user's other datasets. */
  testDatasets: TestDataset[];
  onLaunched: (job: Job) => void;
}

type Rule = "top" | "flags" | "greedy";

const MAX_SEEDS = 20;

/** Launches a verify job: retrain without the pruned pairs and compare with all pairs and random. */
export function VerifyForm({ datasetId, audit, flaggedCount, testDatasets, onLaunched }: Props) {
  const launch = useLaunchVerify(datasetId);
  const columns = useHarmColumns(datasetId, audit.id);
  const [rule, setRule] = useState<Rule>("top");
  const [method, setMethod] = useState<string>(VERIFY_DEFAULTS.method);
  const [percent, setPercent] = useState(String(VERIFY_DEFAULTS.fraction * 100));
  const [seeds, setSeeds] = useState(String(VERIFY_DEFAULTS.seeds));
  const [testDatasetId, setTestDatasetId] = useState("");

  const fraction = Number(percent) / 100;
  const seedCount = Number(seeds);
  const fractionOk = rule !== "top" || (percent !== "" && fraction > 0 && fraction < 1);
  const seedsOk = Number.isInteger(seedCount) && seedCount >= 1 && seedCount <= MAX_SEEDS;
  const noFlags = flaggedCount === 0;
  const valid = fractionOk && seedsOk && !(rule === "flags" && noFlags);

  const methods = columns.data?.length ? columns.data : [VERIFY_DEFAULTS.method];
  const auditMethod =
    (audit.metrics?.kind === "audit" ? audit.metrics.default_method : null) ?? audit.config.default_method;
  const groupBudget = audit.metrics?.kind === "audit" ? (audit.metrics.group?.budget ?? null) : null;
  const arms = rule === "greedy" ? 4 : 3;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!valid) return;
    const base = {
      kind: "verify" as const,
      audit_job_id: audit.id,
      seeds: seedCount,
      test_dataset_id: testDatasetId === "" ? null : Number(testDatasetId),
    };
    const body: VerifyCreate =
      rule === "flags"
        ? { ...base, use_flags: true }
        : rule === "greedy"
          ? { ...base, use_flags: false, rule: "greedy" }
          : { ...base, use_flags: false, method, fraction };
    launch.mutate(body, { onSuccess: (job) => onLaunched(job) });
  };

  return (
    <form className="card verify-form" onSubmit={submit} aria-labelledby="verify-form-title">
      <div className="section-head">
        <h2 id="verify-form-title">Verify pruning</h2>
        <p className="muted small">
          Retrains audit #{audit.id}'s reward model from scratch on all training pairs, on the pruned
          set and on a random removal of the same size{rule === "greedy" && " and the first-order top-K"}, once per
          seed ({arms * (seedsOk ? seedCount : 0)}{" "}
          retrains), and compares them on held-out pairs.
        </p>
      </div>
      <fieldset className="verify-rule">
        <legend>Prune</legend>
        <label className="inline">
          <input
            type="radio"
            name="verify-rule"
            value="top"
            checked={rule === "top"}
            onChange={() => setRule("top")}
          />
          The most harmful pairs
        </label>
        <NumberField
          label="Fraction to prune (%)"
          title={schemaHelp("VerifyCreate", "fraction")}
          min={0.1}
          max={99.9}
          step="any"
          value={percent}
          disabled={rule !== "top"}
          onChange={setPercent}
        />
        <label title={schemaHelp("VerifyCreate", "method")}>
          Ranked by
          <select value={method} disabled={rule !== "top"} onChange={(e) => setMethod(e.target.value)}>
            {methods.map((column) => (
              <option key={column} value={column}>
                {columnLabel(column, auditMethod)}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          <input
            type="radio"
            name="verify-rule"
            value="flags"
            checked={rule === "flags"}
            disabled={noFlags}
            onChange={() => setRule("flags")}
          />
          My current flags
          <span className="muted small">
            {flaggedCount === undefined ? "" : noFlags ? "(none flagged yet)" : `(${count(flaggedCount, "pair")})`}
          </span>
        </label>
        {groupBudget !== null && (
          <label className="inline" title={schemaHelp("VerifyCreate", "rule")}>
            <input
              type="radio"
              name="verify-rule"
              value="greedy"
              checked={rule === "greedy"}
              onChange={() => setRule("greedy")}
            />
            The greedy budget ({groupBudget} pairs) vs top-K vs random
          </label>
        )}
      </fieldset>
      <div className="verify-row">
        <NumberField
          label="Seeds"
          title={schemaHelp("VerifyCreate", "seeds")}
          min={1}
          max={MAX_SEEDS}
          value={seeds}
          onChange={setSeeds}
        />
        <label title={schemaHelp("VerifyCreate", "test_dataset_id")}>
          Evaluate on
          <select value={testDatasetId} onChange={(e) => setTestDatasetId(e.target.value)}>
            <option value="">the audit's validation pairs</option>
            {testDatasets.map((dataset) => (
              <option key={dataset.id} value={dataset.id}>
                {dataset.name} ({count(dataset.n_pairs, "pair")})
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={!valid || launch.isPending}>
          {launch.isPending ? "Launching…" : "Verify pruning"}
        </button>
      </div>
      {!fractionOk && <p className="error">The fraction to prune must lie between 0 and 100%.</p>}
      {!seedsOk && <p className="error">Seeds must be a whole number from 1 to {MAX_SEEDS}.</p>}
      {seedsOk && seedCount < 2 && (
        <p className="muted small">With one seed the differences get no interval; use 3 or more.</p>
      )}
      {launch.isError && (
        <Alert title="Could not launch" error={launch.error} />
      )}
    </form>
  );
}

/** `harm` is the audit's own ranking; `harm_<method>` ranks by one method. */
function columnLabel(column: string, auditMethod: unknown): string {
  if (column === "harm") {
    return typeof auditMethod === "string"
      ? `harm (the audit's ranking: ${methodLabel(auditMethod)})`
      : "harm (the audit's ranking)";
  }
  return methodLabel(column.replace(/^harm_/, ""));
}
