import {
  ARMS,
  DIFFERENCES,
  verifyMetrics,
  type Arm,
  type ArmSummary,
  type Difference,
  type DifferenceKey,
  type Job,
} from "../api/verify";
import { formatLoss, formatPoints } from "./format";
import { ARM_LABELS, VerifyPlot } from "./VerifyPlot";

interface Props {
  job: Job;
  /** Opens the audit this verification retrained (the page selects it). */
  onOpenAudit?: (auditJobId: number) => void;
}

const DIFFERENCE_LABELS: Record<DifferenceKey, string> = {
  pruned_minus_full: "Pruned − all pairs",
  pruned_minus_random: "Pruned − random removal",
  pruned_minus_top_k: "Greedy − first-order top-K",
  top_k_minus_random: "Top-K − random removal",
};

/** A succeeded verify job: the verdict in one sentence, the retrains plotted, the numbers tabled. */
export function VerifyResults({ job, onOpenAudit }: Props) {
  const metrics = verifyMetrics(job);
  if (!metrics) {
    return (
      <section className="card">
        <h2>Verification results</h2>
        <p role="alert" className="error">
          Job {job.id} finished without verification results to show.
        </p>
      </section>
    );
  }
  const arms = ARMS.filter((arm) => metrics.arms[arm]);
  const differences = DIFFERENCES.filter((key) => metrics.differences[key]);
  const overEvaluation = differences.some((key) => metrics.evaluation_paired?.[key]);
  const nTrain = (arm: Arm) => metrics.runs.find((run) => run.arm === arm)?.n_train;
  const confidence =
    differences.map((key) => metrics.differences[key]?.accuracy.confidence).find((c) => c != null) ?? 0.95;
  const level = `${Math.round(confidence * 100)}%`;
  const auditId = metrics.audit_job_id ?? (job.config.audit_job_id as number | undefined);

  return (
    <section className="card verify-results" aria-labelledby={`verify-${job.id}-title`}>
      <h2 id={`verify-${job.id}-title`}>Does pruning pay?</h2>
      <p className="verify-summary" data-testid="verify-summary">
        {metrics.summary}
      </p>
      <p className="muted small">
        Pruned {metrics.rule ?? "pairs"}
        {auditId !== undefined && (
          <>
            {" "}of{" "}
            {onOpenAudit ? (
              <button type="button" className="link" onClick={() => onOpenAudit(auditId)}>
                audit #{auditId}
              </button>
            ) : (
              `audit #${auditId}`
            )}
          </>
        )}
        : {metrics.n_removed} of {metrics.n_train} training pairs removed. Evaluated on{" "}
        {metrics.evaluated_on ?? "held-out pairs"} ({metrics.n_eval} pairs), seeds{" "}
        {metrics.seeds.join(", ")}.
      </p>
      <div className="verify-body">
        <VerifyPlot metrics={metrics} />
        <div>
          <table className="verify-table" aria-label="Accuracy and loss per training set">
            <thead>
              <tr>
                <th scope="col">Trained on</th>
                <th scope="col" className="num">Pairs</th>
                <th scope="col" className="num">Accuracy, % (mean ± std)</th>
                <th scope="col" className="num">BT loss (mean ± std)</th>
              </tr>
            </thead>
            <tbody>
              {arms.map((arm) => (
                <tr key={arm}>
                  <th scope="row">
                    <span className={`swatch arm-${arm}`} aria-hidden="true" />
                    {ARM_LABELS[arm]}
                  </th>
                  <td className="num">{nTrain(arm) ?? "–"}</td>
                  <td className="num">
                    {withStd(metrics.arms[arm]?.accuracy, percentNumber, percentNumber)}
                  </td>
                  <td className="num">{withStd(metrics.arms[arm]?.loss, formatLoss, formatLoss)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">
            Each set is retrained from scratch with the audit's recipe, once per seed. Random
            removal drops as many pairs as pruning, drawn at random. Accuracy is the share of
            evaluation pairs whose chosen response gets the higher reward; BT loss is the mean
            −log σ(reward margin).
          </p>
        </div>
      </div>
      <table className="verify-table" aria-label="Paired differences">
        <thead>
          <tr>
            <th scope="col">Difference</th>
            <th scope="col" className="num">Accuracy (points)</th>
            <th scope="col" className="num">{level} CI over seeds</th>
            {overEvaluation && <th scope="col" className="num">{level} CI over eval. pairs</th>}
            <th scope="col" className="num">BT loss</th>
            <th scope="col" className="num">{level} CI over seeds</th>
          </tr>
        </thead>
        <tbody>
          {differences.map((key) => {
            const difference = metrics.differences[key]!;
            const byPair = metrics.evaluation_paired?.[key];
            return (
              <tr key={key}>
                <th scope="row">{DIFFERENCE_LABELS[key]}</th>
                <td className="num">{formatPoints(difference.accuracy.mean)}</td>
                <Interval difference={difference.accuracy} format={formatPoints} />
                {overEvaluation &&
                  (byPair ? (
                    <Interval difference={byPair.accuracy} format={formatPoints} />
                  ) : (
                    <td className="num">–</td>
                  ))}
                <td className="num">{formatLoss(difference.loss.mean, true)}</td>
                <Interval difference={difference.loss} format={(v) => formatLoss(v, true)} />
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="muted small">
        Differences are paired: each seed's pruned retrain minus the same seed's other retrain.
        Bold intervals exclude zero. Lower loss is better.
      </p>
    </section>
  );
}

/** 0.612 → "61.2": the column header carries the unit. */
function percentNumber(fraction: number): string {
  return (fraction * 100).toFixed(1);
}

function withStd(
  summary: ArmSummary | undefined,
  formatMean: (value: number) => string,
  formatStd: (value: number) => string,
): string {
  if (!summary || summary.mean == null) return "–";
  return summary.std == null ? formatMean(summary.mean) : `${formatMean(summary.mean)} ± ${formatStd(summary.std)}`;
}

function Interval({ difference, format }: { difference: Difference; format: (value: number) => string }) {
  if (difference.ci_low == null || difference.ci_high == null) {
    return (
      <td className="num muted" title="An interval needs at least 2 seeds">
        none (n = {difference.n})
      </td>
    );
  }
  const excludesZero = difference.ci_low > 0 || difference.ci_high < 0;
  return (
    <td className={`num${excludesZero ? " excludes-zero" : ""}`}>
      {format(difference.ci_low)} to {format(difference.ci_high)}
    </td>
  );
}
