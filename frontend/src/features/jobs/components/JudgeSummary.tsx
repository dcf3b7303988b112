import type { Schemas } from "../../../api/client";
import { count, formatNumber, formatPercent } from "../../../components/ui";

type JudgeMetrics = Schemas["JudgeMetrics"];

function percent(value: number | null | undefined): string {
  return typeof value === "number" ? formatPercent(value) : "–";
}

/** A finished judge job's figures: how far the judge agrees with the labels, its position bias,
 *  and what it cost (requests sent, answers the cache gave for free, failed orders). */
export function JudgeSummary({ metrics }: { metrics: JudgeMetrics }) {
  const failures = metrics.failures ?? [];
  return (
    <div className="metrics" aria-label="Judge results">
      <dl className="headline-metrics">
        <div className="headline-main">
          <dt>Agrees with the labels</dt>
          <dd data-testid="judge-agreement">{percent(metrics.agreement)}</dd>
        </div>
        <div>
          <dt>Picked the response shown first</dt>
          <dd data-testid="judge-first-position">{percent(metrics.first_position_rate)}</dd>
        </div>
        <div>
          <dt>Same verdict in both orders</dt>
          <dd>{percent(metrics.consistency)}</dd>
        </div>
        <div>
          <dt>Requests</dt>
          <dd data-testid="judge-requests-sent">
            {count(metrics.requests ?? 0, "request")} sent · {count(metrics.cache_hits ?? 0, "answer")} from the
            cache
          </dd>
        </div>
        <div>
          <dt>Failed orders</dt>
          <dd>{formatNumber(metrics.failed_orders ?? 0)}</dd>
        </div>
        {typeof metrics.seconds === "number" && (
          <div>
            <dt>Took</dt>
            <dd>{formatNumber(metrics.seconds)} s</dd>
          </div>
        )}
      </dl>
      {failures.length > 0 && (
        <details>
          <summary>Orders without a verdict ({count(failures.length, "order")} listed)</summary>
          <ul>
            {failures.map((f) => (
              <li key={`${f.pair_id}-${f.order}`}>
                pair {f.pair_id}, {f.order}: {f.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}
