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
import { Alert } from "../../../components/ui/Alert";
import { Table } from "../../../components/ui/Table";
import { count } from "../../../components/ui/count";

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
        <Alert>Job {job.id} finished without verification results to show.</Alert>
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
        {metrics.evaluated_on ?? "held-out pairs"} ({count(metrics.n_eval, "pair")}), seeds{" "}
        {metrics.seeds.join(", ")}.
      </p>
      <div className="verify-body">
        <VerifyPlot metrics={metrics} />
        <div>
          <Table
            label="Accuracy and loss per training set"
            className="verify-table"
            rows={arms}
            rowKey={(arm) => arm}
            columns={[
              {
                key: "arm",
                header: "Trained on",
                rowHeader: true,
                cell: (arm: Arm) => (
                  <>
                    <span className={`swatch arm-${arm}`} aria-hidden="true" />
                    {ARM_LABELS[arm]}
                  </>
                ),
              },
              { key: "pairs", header: "Pairs", className: "num", cell: (arm: Arm) => nTrain(arm) ?? "–" },
              {
                key: "accuracy",
                header: "Accuracy, % (mean ± std)",
                className: "num",
                cell: (arm: Arm) => withStd(metrics.arms[arm]?.accuracy, percentNumber, percentNumber),
              },
              {
                key: "loss",
                header: "BT loss (mean ± std)",
                className: "num",
                cell: (arm: Arm) => withStd(metrics.arms[arm]?.loss, formatLoss, formatLoss),
              },
            ]}
          />
          <p className="muted small">
            Each set is retrained from scratch with the audit's recipe, once per seed. Random
            removal drops as many pairs as pruning, drawn at random. Accuracy is the share of
            evaluation pairs whose chosen response gets the higher reward; BT loss is the mean
            −log σ(reward margin).
          </p>
        </div>
      </div>
      <Table
        label="Paired differences"
        className="verify-table"
        rows={differences}
        rowKey={(key) => key}
        columns={[
          { key: "name", header: "Difference", rowHeader: true, cell: (key: DifferenceKey) => DIFFERENCE_LABELS[key] },
          {
            key: "accuracy",
            header: "Accuracy (points)",
            className: "num",
            cell: (key: DifferenceKey) => formatPoints(metrics.differences[key]!.accuracy.mean),
          },
          {
            key: "accuracy-ci",
            header: `${level} CI over seeds`,
            className: "num",
            cell: (key: DifferenceKey) => <Interval difference={metrics.differences[key]!.accuracy} format={formatPoints} />,
          },
          ...(overEvaluation
            ? [
                {
                  key: "accuracy-eval-ci",
                  header: `${level} CI over eval. pairs`,
                  className: "num",
                  cell: (key: DifferenceKey) => {
                    const byPair = metrics.evaluation_paired?.[key];
                    return byPair ? <Interval difference={byPair.accuracy} format={formatPoints} /> : "–";
                  },
                },
              ]
            : []),
          {
            key: "loss",
            header: "BT loss",
            className: "num",
            cell: (key: DifferenceKey) => formatLoss(metrics.differences[key]!.loss.mean, true),
          },
          {
            key: "loss-ci",
            header: `${level} CI over seeds`,
            className: "num",
            cell: (key: DifferenceKey) => (
              <Interval difference={metrics.differences[key]!.loss} format={(v) => formatLoss(v, true)} />
            ),
          },
        ]}
      />
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
      <span className="muted" title="An interval needs at least 2 seeds">
        none (n = {difference.n})
      </span>
    );
  }
  const excludesZero = difference.ci_low > 0 || difference.ci_high < 0;
  return (
    <span className={excludesZero ? "excludes-zero" : undefined}>
      {format(difference.ci_low)} to {format(difference.ci_high)}
    </span>
  );
}
