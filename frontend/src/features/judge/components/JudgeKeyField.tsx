import { useState } from "react";
import { Alert } from "../../../components/ui";
import { useClearJudgeKey, useJudgeKeyStatus, useSetJudgeKey } from "../api/judgeKey";

/** The caller's own judge API key: typed once, stored encrypted by the server, never shown again.
 * Set, it is what the caller's judge jobs send; cleared, they send the server's key. Not a form
 * of its own: it sits inside the judge's launch form. */
export function JudgeKeyField() {
  const status = useJudgeKeyStatus();
  const save = useSetJudgeKey();
  const clear = useClearJudgeKey();
  const [value, setValue] = useState("");
  const isSet = status.data?.set === true;
  const since = status.data?.updated_at ? new Date(status.data.updated_at).toLocaleString() : null;
  const store = () => save.mutate(value.trim(), { onSuccess: () => setValue("") });
  const error = status.error ?? save.error ?? clear.error;
  return (
    <fieldset className="judge-key">
      <legend>Your judge API key</legend>
      <p className="muted small" data-testid="judge-key-status">
        {status.isPending
          ? "Checking…"
          : isSet
            ? `Set${since ? ` (${since})` : ""}: your judge jobs send it instead of the server's key. It is never shown again.`
            : "Not set: your judge jobs send the server's key (PREFAUDIT_JUDGE_API_KEY), if it has one."}
      </p>
      <div className="launch-row">
        <label className="inline">
          {isSet ? "Replace key" : "Key"}
          <input
            type="password"
            autoComplete="off"
            value={value}
            onChange={(e) => setValue(e.target.value)}
            placeholder="sk-…"
          />
        </label>
        <button type="button" onClick={store} disabled={value.trim() === "" || save.isPending}>
          {save.isPending ? "Saving…" : "Save key"}
        </button>
        {isSet && (
          <button type="button" onClick={() => clear.mutate()} disabled={clear.isPending}>
            Clear key
          </button>
        )}
      </div>
      {error && <Alert title="Judge key" error={error} />}
    </fieldset>
  );
}
