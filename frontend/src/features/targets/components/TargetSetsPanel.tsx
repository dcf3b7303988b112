// Compose, list and delete a dataset's target sets: from reviewed pairs (kept as they are,
// swapped ones exchanged), by a rule over the dataset's pairs, or from another dataset.
import { useState, type FormEvent } from "react";
import { Alert } from "../../../components/ui/Alert";
import { count } from "../../../components/ui/count";
import {
  RULES,
  TARGET_MAX,
  TARGET_MIN,
  useCreateTargetSet,
  useDeleteTargetSet,
  useTargetSet,
  useTargetSets,
  type TargetRule,
  type TargetSetCreate,
} from "../api/targets";

type SourceKind = "reviewed" | "rule" | "dataset";

interface Props {
  datasetId: number;
  canEdit: boolean;
  /** Other datasets the caller may read, to use one as a target. */
  otherDatasets: { id: number; name: string; n_pairs: number }[];
}

export function TargetSetsPanel({ datasetId, canEdit, otherDatasets }: Props) {
  const targets = useTargetSets(datasetId);
  const remove = useDeleteTargetSet(datasetId);
  const [shown, setShown] = useState<number | null>(null);
  const items = targets.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="targets-title">
      <h2 id="targets-title">Target sets</h2>
      <p className="muted">
        {TARGET_MIN}–{TARGET_MAX} pairs that show the behaviour you want. A targeted audit ranks
        the training pairs by how much they push the model away from it (influence against the
        target's loss).
      </p>
      {targets.isError && <Alert title="Could not load target sets" error={targets.error} />}
      {items.length === 0 && targets.data && <p className="muted">No target sets yet.</p>}
      {items.length > 0 && (
        <ul className="target-list" aria-label="Target sets">
          {items.map((target) => (
            <li key={target.id} data-testid={`target-${target.id}`}>
              <strong>{target.name}</strong> · {count(target.n_pairs, "pair")} ·{" "}
              <span className="muted">{target.source}</span>{" "}
              <button type="button" onClick={() => setShown(shown === target.id ? null : target.id)}>
                {shown === target.id ? "Hide pairs" : "Show pairs"}
              </button>
              {canEdit && (
                <button
                  type="button"
                  onClick={() => remove.mutate(target.id)}
                  disabled={remove.isPending}
                  aria-label={`Delete target set ${target.name}`}
                >
                  Delete
                </button>
              )}
              {shown === target.id && <TargetSample datasetId={datasetId} id={target.id} />}
            </li>
          ))}
        </ul>
      )}
      {remove.isError && <Alert title="Could not delete the target set" error={remove.error} />}
      {canEdit && <ComposeTarget datasetId={datasetId} otherDatasets={otherDatasets} />}
    </section>
  );
}

function TargetSample({ datasetId, id }: { datasetId: number; id: number }) {
  const detail = useTargetSet(datasetId, id);
  if (detail.isError) return <Alert title="Could not load the target set" error={detail.error} />;
  if (!detail.data) return <p className="muted">Loading…</p>;
  return (
    <div className="target-sample">
      <p className="muted">{detail.data.description}</p>
      <ol>
        {detail.data.sample.map((pair) => (
          <li key={pair.position}>
            <span className="clip">{pair.prompt.slice(-120)}</span>
            <div>
              <b>preferred:</b> <span className="clip">{pair.chosen.slice(0, 160)}</span>
            </div>
            <div>
              <b>over:</b> <span className="clip">{pair.rejected.slice(0, 160)}</span>
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}

function ComposeTarget({ datasetId, otherDatasets }: Omit<Props, "canEdit">) {
  const create = useCreateTargetSet(datasetId);
  const [kind, setKind] = useState<SourceKind>("reviewed");
  const [rule, setRule] = useState<TargetRule>("shorter_preferred");
  const [limit, setLimit] = useState("200");
  const [other, setOther] = useState<number | null>(null);
  const [name, setName] = useState("");

  const submit = (event: FormEvent) => {
    event.preventDefault();
    let source: TargetSetCreate["source"];
    if (kind === "reviewed") source = { kind: "reviewed" };
    else if (kind === "rule") source = { kind: "rule", rule, limit: Number(limit) };
    else source = { kind: "dataset", dataset_id: other ?? 0 };
    create.mutate({ name: name.trim(), source }, { onSuccess: () => setName("") });
  };

  return (
    <form className="compose-target" onSubmit={submit} aria-label="Compose a target set">
      <h3>Compose a target set</h3>
      <label>
        Build it from
        <select aria-label="Target source" value={kind} onChange={(e) => setKind(e.target.value as SourceKind)}>
          <option value="reviewed">Reviewed pairs (kept as they are, swapped ones exchanged)</option>
          <option value="rule">A rule over this dataset's pairs</option>
          <option value="dataset">Another dataset (upload it first)</option>
        </select>
      </label>
      {kind === "rule" && (
        <>
          <label>
            Rule
            <select aria-label="Target rule" value={rule} onChange={(e) => setRule(e.target.value as TargetRule)}>
              {RULES.map((r) => (
                <option key={r.value} value={r.value}>
                  {r.label}
                </option>
              ))}
            </select>
          </label>
          <label>
            At most (pairs)
            <input
              type="number"
              min={TARGET_MIN}
              max={TARGET_MAX}
              value={limit}
              onChange={(e) => setLimit(e.target.value)}
            />
          </label>
        </>
      )}
      {kind === "dataset" && (
        <label>
          Dataset
          <select aria-label="Target dataset" value={other ?? ""} onChange={(e) => setOther(Number(e.target.value) || null)}>
            <option value="">Choose…</option>
            {otherDatasets.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name} ({count(d.n_pairs, "pair")})
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        Name
        <input
          aria-label="Target name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="named after its source"
        />
      </label>
      <button type="submit" disabled={create.isPending || (kind === "dataset" && other === null)}>
        {create.isPending ? "Creating…" : "Create target set"}
      </button>
      {create.isError && <Alert title="Could not create the target set" error={create.error} />}
      {create.data && (
        <p role="status">
          Created “{create.data.name}” with {count(create.data.n_pairs, "pair")}.
        </p>
      )}
    </form>
  );
}
