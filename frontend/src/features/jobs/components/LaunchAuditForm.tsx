import { useState, type FormEvent, type ReactNode } from "react";
import { useCreateJob, type AuditCreate, type Job } from "../api/jobs";
import {
  defaultOf,
  helpOf,
  methodDescription,
  methodLabel,
  METHODS,
  MODE_LABELS,
  MODEL_PRESETS,
  type MethodName,
  type Mode,
} from "../api/options";
import { Alert } from "../../../components/ui/Alert";
import { RewardModelsField } from "./RewardModelsField";

interface Props {
  datasetId: number;
  onLaunched: (job: Job) => void;
  /** A targeted audit: the target set to measure against (the page's target picker sets it). */
  targetSetId?: number | null;
  /** The target picker, shown among the options (features do not import each other). */
  targetField?: ReactNode;
}

interface NumberOption {
  field: "epochs" | "learning_rate" | "batch_size" | "max_length" | "val_fraction" | "seed" | "prune_budget";
  label: string;
  step: string;
  fallback: number;
  /** Only LoRA training reads it (head mode fits its head exactly; pretrained trains nothing). */
  loraOnly?: boolean;
}

// The server's default for `methods` (the schema carries it), to pre-tick the boxes; `methods` is
// sent only once the user changes them, so the server's own default always decides otherwise.
const DEFAULT_METHODS = defaultOf<MethodName[]>("methods", ["loss"]);

const NUMBER_OPTIONS: NumberOption[] = [
  { field: "epochs", label: "Epochs", step: "1", fallback: 2, loraOnly: true },
  { field: "learning_rate", label: "Learning rate", step: "any", fallback: 5e-4, loraOnly: true },
  { field: "batch_size", label: "Batch size", step: "1", fallback: 16 },
  { field: "max_length", label: "Max tokens", step: "1", fallback: 128 },
  { field: "val_fraction", label: "Validation fraction", step: "any", fallback: 0.1 },
  { field: "seed", label: "Seed", step: "1", fallback: 0 },
  { field: "prune_budget", label: "Prune budget (group: fraction or count)", step: "any", fallback: 0.1 },
];

/** The harm select's empty option: what the server does when the launch names no method. */
function serverDefaultLabel(serverDefault: string): string {
  return serverDefault === "auto"
    ? "chosen by the job from its own evidence (canaries, validation)"
    : `server default (${methodLabel(serverDefault)})`;
}

/** Starts an audit: pick a model preset; everything else defaults on the server. */
export function LaunchAuditForm({ datasetId, onLaunched, targetSetId = null, targetField }: Props) {
  const create = useCreateJob(datasetId);
  const [model, setModel] = useState<string>(defaultOf("model", "minilm"));
  const [customModel, setCustomModel] = useState("");
  const [mode, setMode] = useState<Mode>(defaultOf<Mode>("mode", "lora"));
  const [numbers, setNumbers] = useState<Record<string, string>>({});
  const [methods, setMethods] = useState<MethodName[]>(DEFAULT_METHODS);
  const [methodsTouched, setMethodsTouched] = useState(false);
  const [defaultMethod, setDefaultMethod] = useState<MethodName | null>(null);
  const [rewardModels, setRewardModels] = useState<string[]>([]);

  // LoRA-only options are neither shown nor sent in the other modes.
  const shownOptions = NUMBER_OPTIONS.filter((option) => mode === "lora" || !option.loraOnly);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    // Send only what differs from the server's defaults, so the job's config reads as intent.
    const config: AuditCreate = { kind: "audit", model: customModel.trim() || model };
    if (mode !== defaultOf("mode", "lora")) config.mode = mode;
    for (const option of shownOptions) {
      const raw = numbers[option.field];
      if (raw !== undefined && raw !== "") config[option.field] = Number(raw);
    }
    if (methodsTouched) config.methods = methods;
    if (defaultMethod !== null) config.default_method = defaultMethod;
    if (rewardModels.length > 0) config.reward_models = rewardModels;
    if (targetSetId !== null) config.target_set_id = targetSetId;
    create.mutate(config, { onSuccess: onLaunched });
  };

  const toggleMethod = (method: MethodName, on: boolean) => {
    setMethodsTouched(true);
    setMethods((current) =>
      on ? METHODS.filter((m) => m === method || current.includes(m)) : current.filter((m) => m !== method),
    );
  };

  return (
    <form className="card launch" onSubmit={submit} aria-label="Launch an audit">
      <h2>Launch an audit</h2>
      <div className="launch-row">
        <label>
          Model preset
          <select value={model} onChange={(e) => setModel(e.target.value)}>
            {MODEL_PRESETS.map((preset) => (
              <option key={preset.value} value={preset.value}>
                {preset.label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? "Launching…" : "Launch audit"}
        </button>
      </div>
      {targetField}
      <details className="advanced">
        <summary>Advanced options</summary>
        <div className="option-grid">
          <label title={helpOf("model")}>
            Custom model: local path or hub id (overrides the preset)
            <input
              value={customModel}
              onChange={(e) => setCustomModel(e.target.value)}
              placeholder="/models/my-rm or org/name"
            />
          </label>
          <label title={helpOf("mode")}>
            Training mode
            <select value={mode} onChange={(e) => setMode(e.target.value as Mode)}>
              {(Object.keys(MODE_LABELS) as Mode[]).map((value) => (
                <option key={value} value={value}>
                  {MODE_LABELS[value]}
                </option>
              ))}
            </select>
          </label>
          {shownOptions.map((option) => (
            <label key={option.field} title={helpOf(option.field)}>
              {option.label}
              <input
                type="number"
                step={option.step}
                value={numbers[option.field] ?? ""}
                placeholder={String(defaultOf(option.field, option.fallback))}
                onChange={(e) => setNumbers({ ...numbers, [option.field]: e.target.value })}
              />
            </label>
          ))}
        </div>
        <fieldset className="methods" title={helpOf("methods")}>
          <legend>Scores to compute</legend>
          {METHODS.map((method) => (
            <label key={method} className="inline" title={methodDescription(method)}>
              <input
                type="checkbox"
                checked={methods.includes(method)}
                onChange={(e) => toggleMethod(method, e.target.checked)}
              />
              {methodLabel(method)}
            </label>
          ))}
        </fieldset>
        <label title={helpOf("default_method")}>
          Harm ranks by
          <select
            value={defaultMethod ?? ""}
            onChange={(e) => setDefaultMethod((e.target.value || null) as MethodName | null)}
          >
            <option value="">{serverDefaultLabel(String(defaultOf("default_method", "auto")))}</option>
            {METHODS.map((method) => (
              <option
                key={method}
                value={method}
                disabled={!methods.includes(method)}
                title={methodDescription(method)}
              >
                {methodLabel(method)}
              </option>
            ))}
          </select>
        </label>
        <RewardModelsField value={rewardModels} onChange={setRewardModels} />
      </details>
      {create.isError && (
        <Alert title="Could not launch" error={create.error} />
      )}
    </form>
  );
}
