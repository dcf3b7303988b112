import { useState, type FormEvent } from "react";
import { Alert, NumberField } from "../../../components/ui";
import {
  DEFAULT_CONCURRENCY,
  MAX_CONCURRENCY,
  useJudgeDefaults,
  useJudgeEstimate,
  useLaunchJudge,
  type JudgeCreate,
  type JudgeJob,
  type JudgeTemplate,
} from "../api/judge";
import { JudgeEstimateView } from "./JudgeEstimateView";
import { JudgeKeyField } from "./JudgeKeyField";

interface Props {
  datasetId: number;
  /** Called with the queued judge job (the page selects it in its jobs list). */
  onLaunched?: (job: JudgeJob) => void;
}

/** The owner's LLM judge: server, model and prompt; the estimate first, then the launch. */
export function JudgePanel({ datasetId, onLaunched }: Props) {
  const defaults = useJudgeDefaults();
  const estimate = useJudgeEstimate(datasetId);
  const launch = useLaunchJudge(datasetId);
  const [baseUrl, setBaseUrl] = useState("");
  const [model, setModel] = useState("");
  const [edited, setEdited] = useState<JudgeTemplate | null>(null);
  const [concurrency, setConcurrency] = useState(String(DEFAULT_CONCURRENCY));
  const [probe, setProbe] = useState(false);
  const [estimatedFor, setEstimatedFor] = useState<string | null>(null);

  // The template shown is the server's default until the user edits it.
  const template: JudgeTemplate = edited ?? defaults.data?.template ?? {};
  const body: JudgeCreate = {
    base_url: baseUrl.trim(),
    model: model.trim(),
    template,
    max_concurrency: Number(concurrency),
  };
  const key = JSON.stringify(body);
  const ready = body.base_url !== "" && body.model !== "" && defaults.isSuccess;
  const stale = estimate.isSuccess && estimatedFor !== key;

  const runEstimate = () => {
    launch.reset();
    estimate.mutate({ ...body, probe }, { onSuccess: () => setEstimatedFor(key) });
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    launch.mutate(body, { onSuccess: (job) => onLaunched?.(job) });
  };
  const editTemplate = (patch: Partial<JudgeTemplate>) => setEdited({ ...template, ...patch });

  return (
    <form className="card launch" onSubmit={submit} aria-label="LLM judge">
      <h2>LLM judge</h2>
      <p className="muted">
        Asks an OpenAI-compatible server which response of each pair is better, twice (chosen shown first, then
        second). The API key is yours (below, stored encrypted) or else the server’s setting
        (PREFAUDIT_JUDGE_API_KEY); it is never part of a job.
        {defaults.data && !defaults.data.key_configured && " This server has no judge key set: without your own, a server that needs one will refuse."}
      </p>
      {defaults.isError && <Alert title="Could not load the judge's defaults" error={defaults.error} />}
      <div className="option-grid">
        <label>
          Base URL
          <input value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} placeholder="http://127.0.0.1:8080/v1" />
        </label>
        <label>
          Model
          <input value={model} onChange={(e) => setModel(e.target.value)} placeholder="the model the server serves" />
        </label>
        <NumberField label="Max concurrency" min={1} max={MAX_CONCURRENCY} value={concurrency} onChange={setConcurrency} />
      </div>
      <JudgeKeyField />
      {defaults.data ? (
        <TemplateFields template={template} placeholders={defaults.data.placeholders ?? []} onChange={editTemplate} />
      ) : (
        defaults.isPending && <p className="muted">Loading the default prompt…</p>
      )}
      <div className="launch-row">
        <label className="inline">
          <input type="checkbox" checked={probe} onChange={(e) => setProbe(e.target.checked)} />
          Probe the server (time one real request)
        </label>
        <button type="button" onClick={runEstimate} disabled={!ready || estimate.isPending}>
          {estimate.isPending ? "Estimating…" : "Estimate"}
        </button>
        <button
          type="submit"
          className="primary"
          disabled={!estimate.isSuccess || stale || launch.isPending}
          title={estimate.isSuccess && !stale ? undefined : "Estimate the current values first"}
        >
          {launch.isPending ? "Launching…" : "Launch judge job"}
        </button>
      </div>
      {estimate.isError && <Alert title="Could not estimate" error={estimate.error} />}
      {estimate.data && <JudgeEstimateView estimate={estimate.data} stale={stale} />}
      {launch.isError && <Alert title="Could not launch the judge job" error={launch.error} />}
      {launch.data && (
        <p role="status">
          Queued judge job {launch.data.id} ({launch.data.status}); it is in the jobs list, and its columns appear in
          the pairs table when it finishes.
        </p>
      )}
    </form>
  );
}

function TemplateFields({
  template,
  placeholders,
  onChange,
}: {
  template: JudgeTemplate;
  placeholders: string[];
  onChange: (patch: Partial<JudgeTemplate>) => void;
}) {
  return (
    <details className="advanced">
      <summary>Prompt template</summary>
      <p className="muted small">
        The user message must hold {placeholders.join(", ") || "the placeholders"} once each;
        the response shown first is A.
      </p>
      <label>
        System message
        <textarea rows={3} value={template.system ?? ""} onChange={(e) => onChange({ system: e.target.value })} />
      </label>
      <label>
        User message
        <textarea rows={8} value={template.user ?? ""} onChange={(e) => onChange({ user: e.target.value })} />
      </label>
      <NumberField
        label="Characters kept of each text"
        min={16}
        value={String(template.max_chars ?? "")}
        onChange={(value) => onChange({ max_chars: Number(value) })}
      />
    </details>
  );
}
