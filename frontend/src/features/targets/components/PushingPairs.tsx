// A targeted audit's result: its target, how the model does on it, and the training pairs that
// push the model away from it most (highest harm by influence against the target).
import { Alert } from "../../../components/ui/Alert";
import { Num } from "../../../components/ui/Num";
import { formatPercent } from "../../../components/ui/format";
import type { Schemas } from "../../../api/client";
import { usePushingPairs } from "../api/targets";

type TargetSummary = Schemas["TargetSummary"];

/** The target a job's metrics name, if it was a targeted audit. */
export function targetOf(metrics: unknown): TargetSummary | null {
  if (typeof metrics !== "object" || metrics === null) return null;
  const target = (metrics as { target?: TargetSummary | null }).target;
  return target ?? null;
}

export function PushingPairs({
  datasetId,
  jobId,
  target,
}: {
  datasetId: number;
  jobId: number;
  target: TargetSummary;
}) {
  const pairs = usePushingPairs(datasetId, jobId);
  return (
    <section className="card" aria-labelledby="pushing-title" data-testid="pushing-pairs">
      <h2 id="pushing-title">Pairs that push against “{target.name ?? "the target"}” most</h2>
      <p className="muted">
        Audit {jobId} measured {target.methods.join(", ")} against target set{" "}
        {target.target_set_id} ({target.n_pairs} pairs; the model prefers the target's choice on{" "}
        {formatPercent(target.accuracy)} of them). Removing a pair at the top is predicted to lower
        the target's loss most. {target.training_loss_methods.join(", ")} do not read the target.
      </p>
      {pairs.isError && <Alert title="Could not load the pairs" error={pairs.error} />}
      {pairs.data && (
        <table className="pushing">
          <thead>
            <tr>
              <th>Rank</th>
              <th>Row</th>
              <th>Prompt (end)</th>
              <th>Chosen</th>
              <th>Rejected</th>
              <th>Harm against the target</th>
            </tr>
          </thead>
          <tbody>
            {pairs.data.items.map((pair, k) => (
              <tr key={pair.id} data-testid="pushing-row">
                <td>{k + 1}</td>
                <td>{pair.row}</td>
                <td className="clip">{pair.prompt.slice(-100)}</td>
                <td className="clip">{pair.chosen.slice(0, 120)}</td>
                <td className="clip">{pair.rejected.slice(0, 120)}</td>
                <td>
                  <Num value={(pair.scores as Record<string, number | null> | null)?.harm_influence ?? null} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
