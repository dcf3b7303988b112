import { count, Num } from "../../../components/ui";
import type { JudgeEstimate } from "../api/judge";

/** What a judge job would cost, before launch: requests (both orders), cached ones, tokens, time. */
export function JudgeEstimateView({ estimate, stale }: { estimate: JudgeEstimate; stale: boolean }) {
  const cached = estimate.cached_requests;
  return (
    <section aria-label="Judge estimate" className="judge-estimate">
      <h3>Estimate</h3>
      {stale && <p className="muted">The form changed since this estimate: estimate again before launching.</p>}
      <dl className="option-grid">
        <dt>Requests</dt>
        <dd data-testid="judge-requests">
          {count(estimate.requests, "request")} ({count(estimate.pairs, "pair")}, both orders)
        </dd>
        <dt>Cached requests</dt>
        <dd data-testid="judge-cached">
          {cached === null || cached === undefined
            ? "not counted (large dataset)"
            : `${count(cached, "request")} answered already (free)`}
        </dd>
        <dt>Prompt tokens</dt>
        <dd data-testid="judge-prompt-tokens">
          <Num value={estimate.prompt_tokens} /> <span className="muted small">({estimate.token_method})</span>
        </dd>
        <dt>Answer tokens (at most)</dt>
        <dd data-testid="judge-completion-tokens">
          <Num value={estimate.completion_tokens} />
        </dd>
        <dt>Time</dt>
        <dd data-testid="judge-time">
          {estimate.seconds === null || estimate.seconds === undefined ? (
            "unknown: no rate yet (tick “Probe the server” to time one request)"
          ) : (
            <>
              <Num value={estimate.seconds} unit="s" />
              {estimate.seconds_per_request !== null && estimate.seconds_per_request !== undefined && (
                <>
                  {" "}
                  (<Num value={estimate.seconds_per_request} unit="s per request" />)
                </>
              )}
            </>
          )}
          <span className="muted small"> · {estimate.rate_source}</span>
        </dd>
      </dl>
    </section>
  );
}
