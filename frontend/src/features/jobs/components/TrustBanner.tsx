/** "Can this ranking be trusted?": the audit's validation evidence and its mislabel estimate. */
import type { Schemas } from "../../../api/client";
import { Alert } from "../../../components/ui/Alert";
import { methodLabel } from "../api/options";

type AuditMetrics = Schemas["AuditMetrics"];
type Mislabelled = Schemas["MislabelledEstimate"];
type MethodBenchmark = Schemas["MethodBenchmark"];

/** A verdict with the numbers the banner states (older jobs may lack the interval). */
type Trust = Schemas["TrustVerdict"] & {
  val_accuracy: number;
  val_accuracy_ci95: [number, number];
  is_evidence: boolean;
};

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const fix = (x: number, digits = 3) => x.toFixed(digits);
const isNumber = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

function completeTrust(trust: Schemas["TrustVerdict"] | null | undefined): Trust | null {
  if (!trust || !isNumber(trust.val_accuracy) || typeof trust.is_evidence !== "boolean") return null;
  const ci = trust.val_accuracy_ci95;
  if (!ci || ci.length !== 2 || !ci.every(isNumber)) return null;
  return trust as Trust;
}

/** Shown above a finished audit's metrics; renders nothing for jobs from before these metrics. */
export function TrustBanner({
  metrics,
}: {
  metrics: Pick<AuditMetrics, "trust" | "mislabelled" | "method_benchmark"> & {
    default_choice?: AuditMetrics["default_choice"];
  };
}) {
  const trust = completeTrust(metrics.trust);
  const mislabelled = metrics.mislabelled ?? null;
  const benchmark = metrics.method_benchmark?.rows?.length ? metrics.method_benchmark : null;
  if (!trust && !mislabelled) return null;
  return (
    <div className="trust">
      {trust && <Verdict trust={trust} />}
      {metrics.default_choice?.reason && (
        <p className="small" data-testid="default-choice">
          Ranked by <strong>{methodLabel(metrics.default_choice.method ?? "")}</strong> (chosen by this
          job): {metrics.default_choice.reason}
        </p>
      )}
      {mislabelled && <Estimate estimate={mislabelled} />}
      {benchmark && <Benchmark benchmark={benchmark} />}
    </div>
  );
}

/** "accuracy 0.57 [0.44, 0.69] on 60 held-out pairs; validation loss 0.6923 vs ln 2 = 0.6931" */
function evidence(trust: Trust, withSize: boolean): string {
  const [low, high] = trust.val_accuracy_ci95;
  let text = `validation accuracy ${fix(trust.val_accuracy, 2)} (95% interval [${fix(low, 2)}, ${fix(high, 2)}])`;
  if (withSize && isNumber(trust.n_val)) text += ` on ${trust.n_val} held-out pairs`;
  if (isNumber(trust.val_loss)) {
    text += `; validation loss ${fix(trust.val_loss, 4)} vs ln 2 = ${fix(isNumber(trust.ln2) ? trust.ln2 : Math.LN2, 4)}`;
  }
  return text;
}

function Verdict({ trust }: { trust: Trust }) {
  if (!trust.is_evidence) {
    return (
      <div data-testid="trust-banner" title={trust.message ?? undefined}>
        <Alert className="banner warning">
          <strong>The ranking is not evidence.</strong> The reward model has not shown it knows more
          than chance: {evidence(trust, true)}. A high score here does not mean a pair is wrong; give
          more pairs, a larger validation split or a stronger model.
        </Alert>
      </div>
    );
  }
  return (
    <div className="banner calm" role="status" data-testid="trust-banner" title={trust.message ?? undefined}>
      The reward model beats chance
      {isNumber(trust.n_val) && <> on {trust.n_val} held-out pairs</>}: {evidence(trust, false)}.
    </div>
  );
}

function Estimate({ estimate }: { estimate: Mislabelled }) {
  const top = estimate.expected_precision_at_top?.["0.1"];
  const range =
    estimate.count_ci95?.length === 2 && estimate.count_ci95.every(isNumber) ? estimate.count_ci95 : null;
  const count = estimate.estimated_count;
  const n = estimate.n;
  const message = estimate.message ?? undefined;
  if (!isNumber(count) || !isNumber(n)) {
    return (
      <p className="estimate muted" data-testid="mislabelled-estimate">
        {message ?? "No mislabel estimate for this job."}
      </p>
    );
  }
  const fraction = isNumber(estimate.estimated_fraction) ? estimate.estimated_fraction : count / Math.max(1, n);
  return (
    <p className="estimate" data-testid="mislabelled-estimate" title={message}>
      About <strong>{count}</strong> of {n} training pairs ({pct(fraction)}) are probably mislabelled
      {range && (
        <>
          {" "}
          (95% interval {range[0]}–{range[1]}
          {estimate.precise === false && ": the model is too weak to pin this down"})
        </>
      )}
      {isNumber(top) && <>; expected precision in the top 10%: {pct(top)}</>}.
      {estimate.source === "in_sample" && (
        <span className="muted"> From in-sample margins: likely an underestimate.</span>
      )}
    </p>
  );
}

function Benchmark({ benchmark }: { benchmark: MethodBenchmark }) {
  return (
    <details className="benchmark">
      <summary>Which scores can be trusted at this data size?</summary>
      {benchmark.summary && <p className="small">{benchmark.summary}</p>}
      {benchmark.notes && benchmark.notes.length > 0 && (
        <p className="small muted">Caveat: {benchmark.notes.join("; ")}.</p>
      )}
      <table className="history">
        <thead>
          <tr>
            <th scope="col">Method</th>
            <th scope="col">Mean AUROC</th>
            <th scope="col">Beats loss</th>
            <th scope="col">Beats length</th>
          </tr>
        </thead>
        <tbody>
          {(benchmark.rows ?? []).map((row) => (
            <tr key={row.method}>
              <td>{methodLabel(row.method)}</td>
              <td className="num">{fix(row.mean_auroc)}</td>
              <td>{row.beats_loss ? "yes" : "no"}</td>
              <td>{row.beats_length ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}
